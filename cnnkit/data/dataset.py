"""The result types every loader returns: :class:`ImageDataset` (one split) and :class:`DataSplits` (all of them).

A dataset is a handful of tensors held in memory, not a per-sample object:
Fashion-MNIST's 60,000 training images are one ``(60000, 1, 28, 28) uint8``
tensor of 47 MB. Conversion to float, normalisation and augmentation happen
per batch on the training device (:mod:`cnnkit.data.transforms`).

Every tensor is checked when the dataset is built, so a bad label or a count
mismatch fails at load time with the dataset's name and source, not deep
inside a loss function.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

Kind = Literal["classification", "segmentation", "detection"]  # a label per image, a class per pixel, or objects
EvalSplit = Literal["test", "val"]


# eq=False: equality of tensors is elementwise, so datasets compare by identity
@dataclass(frozen=True, eq=False)
class ImageDataset:
    """One split of an image dataset, in memory.

    Shapes (``N`` samples, ``C`` channels, ``H`` x ``W`` pixels, ``K`` classes):

    - ``images``: ``(N, C, H, W) uint8``, pixel values 0..255.
    - ``labels``: ``(N,) int64``, class index in ``[0, K)``. For a segmentation
      dataset, the class that covers the most pixels of the image.
    - ``boxes``: optional ``(N, 4) float32`` bounding box of the one object of
      each image, ``(x0, y0, x1, y1)`` in pixel-edge coordinates (the object covers
      pixel columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``).
    - ``masks``: optional ``(N, H, W) bool``, the pixels of that object.
    - ``segmentation``: optional ``(N, H, W) uint8`` class per pixel, ``0`` =
      background (then ``class_names[0]`` names the background); its presence
      makes the dataset a segmentation dataset.
    - ``object_boxes``, ``object_classes``, ``object_masks``: optional, every
      object of every image for detection (up to ``M`` per image):
      ``(N, M, 4) float32`` boxes as ``boxes``, ``(N, M) int64`` classes with
      ``-1`` in the unused slots, ``(N, M, H, W) bool`` each object's visible
      pixels. ``labels`` is then the class of each image's largest object.
    """

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    class_names: tuple[str, ...]  # name of class i at index i
    name: str  # e.g. "fashion-mnist/train"
    source: str = ""  # where the data came from (a directory, a file, a generator), for messages and reports
    boxes: torch.Tensor | None = None  # (N, 4) float32 (x0, y0, x1, y1)
    masks: torch.Tensor | None = None  # (N, H, W) bool
    segmentation: torch.Tensor | None = None  # (N, H, W) uint8, class per pixel
    files: tuple[str, ...] | None = None  # source file of each sample (image folders), index-aligned with images
    object_boxes: torch.Tensor | None = None  # (N, M, 4) float32 (x0, y0, x1, y1); unused slots hold zeros
    object_classes: torch.Tensor | None = None  # (N, M) int64, -1 = no object in that slot
    object_masks: torch.Tensor | None = None  # (N, M, H, W) bool
    skipped: tuple[str, ...] = ()  # "path: reason" for each file left out by skip_bad_images
    fit: str = "crop"  # how image files were fitted to the size (cnnkit.images.ImagePrep): predict reads them so
    mapped: str | None = None  # the pack file `images` (and its arrays) come from, read on demand: subsets are cut beside it

    def __post_init__(self) -> None:
        _check_dataset(self)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        _, c, h, w = self.images.shape
        return (c, h, w)

    @property
    def kind(self) -> Kind:
        if self.segmentation is not None:
            return "segmentation"
        return "detection" if self.object_boxes is not None else "classification"

    @property
    def targets(self) -> torch.Tensor:
        """What a model learns to predict: ``labels`` ``(N,)`` or, for segmentation, ``segmentation`` ``(N, H, W)``."""
        return self.segmentation if self.segmentation is not None else self.labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def class_counts(self) -> list[int]:
        """Number of samples of each class, index ``i`` for class ``i``."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, indices: torch.Tensor | np.ndarray | list[int], name: str | None = None) -> ImageDataset:
        """The samples at ``indices`` (any order, repeats allowed), every per-sample tensor gathered alike.

        The images (and class maps, object masks) of a memory-mapped dataset (``mapped``) are gathered into files
        beside its pack and mapped in turn (:func:`cnnkit.data.packed.gather`), so that a part of a pack larger
        than memory stays on disk (small parts, under 16 MB, are gathered into memory)."""
        index = torch.as_tensor(indices, dtype=torch.int64)

        def take(values: torch.Tensor, what: str) -> torch.Tensor:
            if self.mapped is None:
                return values[index]
            from cnnkit.data.packed import gather

            return gather(values, index, Path(self.mapped).parent, what)

        return replace(
            self,
            name=self.name if name is None else name,
            images=take(self.images, "images"),
            labels=self.labels[index],
            boxes=None if self.boxes is None else self.boxes[index],
            masks=None if self.masks is None else self.masks[index],
            segmentation=None if self.segmentation is None else take(self.segmentation, "class maps"),
            files=None if self.files is None else tuple(self.files[i] for i in index.tolist()),
            object_boxes=None if self.object_boxes is None else self.object_boxes[index],
            object_classes=None if self.object_classes is None else self.object_classes[index],
            object_masks=None if self.object_masks is None else take(self.object_masks, "object masks"),
        )

    def to(self, device: torch.device | str) -> ImageDataset:
        """The same dataset with its tensors on ``device`` (e.g. the whole of Fashion-MNIST on the GPU once)."""
        images = self.images.to(device)
        return replace(
            self,
            images=images,
            mapped=self.mapped if images is self.images else None,
            labels=self.labels.to(device),
            boxes=None if self.boxes is None else self.boxes.to(device),
            masks=None if self.masks is None else self.masks.to(device),
            segmentation=None if self.segmentation is None else self.segmentation.to(device),
            object_boxes=None if self.object_boxes is None else self.object_boxes.to(device),
            object_classes=None if self.object_classes is None else self.object_classes.to(device),
            object_masks=None if self.object_masks is None else self.object_masks.to(device),
        )


def _where(ds: ImageDataset) -> str:
    return f"dataset {ds.name!r}" + (f" (from {ds.source})" if ds.source else "")


def _check_tensor(ds: ImageDataset, field_name: str, value: object, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    """``shape`` uses -1 for 'any size'."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{_where(ds)}: `{field_name}` must be a torch.Tensor. Received: {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{_where(ds)}: `{field_name}` must have dtype {dtype}. Received: dtype={value.dtype}")
    ok = value.dim() == len(shape) and all(want in (-1, got) for want, got in zip(shape, value.shape, strict=False))
    if not ok:
        wanted = "(" + ", ".join("*" if s == -1 else str(s) for s in shape) + ")"
        raise ValueError(f"{_where(ds)}: `{field_name}` must have shape {wanted}. Received: shape={tuple(value.shape)}")


def _check_dataset(ds: ImageDataset) -> None:
    if not isinstance(ds.class_names, tuple) or not all(isinstance(c, str) for c in ds.class_names):
        raise TypeError(f"{_where(ds)}: `class_names` must be a tuple of str. Received: {ds.class_names!r}")
    if not ds.class_names:
        raise ValueError(f"{_where(ds)}: `class_names` is empty; a dataset needs at least one class. Received: ()")
    _check_tensor(ds, "images", ds.images, torch.uint8, (-1, -1, -1, -1))
    n, _, h, w = ds.images.shape
    _check_tensor(ds, "labels", ds.labels, torch.int64, (n,))
    if n > 0:
        low, high = int(ds.labels.min()), int(ds.labels.max())
        if low < 0 or high >= ds.num_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{_where(ds)}: label {bad} is out of range [0, {ds.num_classes}) for {ds.num_classes} classes "
                f"{list(ds.class_names)}; check the label file or the class list. Received: labels from {low} to {high}"
            )
    if ds.boxes is not None:
        _check_tensor(ds, "boxes", ds.boxes, torch.float32, (n, 4))
    if ds.masks is not None:
        _check_tensor(ds, "masks", ds.masks, torch.bool, (n, h, w))
    if ds.segmentation is not None:
        _check_tensor(ds, "segmentation", ds.segmentation, torch.uint8, (n, h, w))
        # (a pack's class maps were checked when packed; a mapped one is not read whole at every cut)
        if n > 0 and ds.mapped is None and int(ds.segmentation.max()) >= ds.num_classes:
            raise ValueError(
                f"{_where(ds)}: `segmentation` holds class {int(ds.segmentation.max())}, out of range "
                f"[0, {ds.num_classes}). Received: class_names={list(ds.class_names)}"
            )
    if (ds.object_boxes is None) != (ds.object_classes is None):
        raise ValueError(f"{_where(ds)}: `object_boxes` and `object_classes` go together. Received: one of them")
    if ds.object_boxes is not None and ds.object_classes is not None:
        _check_tensor(ds, "object_classes", ds.object_classes, torch.int64, (n, -1))
        m = ds.object_classes.shape[1]
        _check_tensor(ds, "object_boxes", ds.object_boxes, torch.float32, (n, m, 4))
        if ds.object_masks is not None:
            _check_tensor(ds, "object_masks", ds.object_masks, torch.bool, (n, m, h, w))
        if n > 0 and m > 0 and (int(ds.object_classes.min()) < -1 or int(ds.object_classes.max()) >= ds.num_classes):
            raise ValueError(f"{_where(ds)}: `object_classes` must be -1 (no object) or in [0, {ds.num_classes}). "
                             f"Received: from {int(ds.object_classes.min())} to {int(ds.object_classes.max())}")
    if ds.files is not None and len(ds.files) != n:
        raise ValueError(f"{_where(ds)}: `files` must name one file per image ({n}). Received: {len(ds.files)} names")


@dataclass(frozen=True, eq=False)
class DataSplits:
    """The splits of one dataset, as :func:`cnnkit.data.load` returns them.

    ``test`` is the dataset's published test split when ``test_official`` is
    true (Fashion-MNIST's 10,000 images), otherwise one cnnkit carved out
    (stratified, fixed seed) or ``None``. ``val`` exists when a ``val_split``
    was asked for (or an image folder has a ``val/`` sub-folder); it is carved
    from the training data and is what training evaluates on, keeping the test
    split for the final report.
    """

    train: ImageDataset
    test: ImageDataset | None
    val: ImageDataset | None
    test_official: bool  # True when `test` is the published test split, not one cnnkit carved
    seed: int = 0  # seed of every split cnnkit carved
    skipped: tuple[str, ...] = ()  # "path: reason" of every file left out by skip_bad_images

    def __post_init__(self) -> None:
        held_out = [ds for ds in (self.test, self.val) if ds is not None]
        for ds in held_out:
            if ds.class_names != self.train.class_names or ds.input_shape != self.train.input_shape:
                raise ValueError(
                    f"dataset {ds.name!r} must have the same classes and image shape as {self.train.name!r}. "
                    f"Received: {list(ds.class_names)} {ds.input_shape} vs {list(self.train.class_names)} "
                    f"{self.train.input_shape}"
                )

    @property
    def eval_split(self) -> EvalSplit | None:
        """Which split training evaluates on: ``"val"`` when there is one, else ``"test"``, else ``None``."""
        if self.val is not None:
            return "val"
        return "test" if self.test is not None else None

    @property
    def evaluation(self) -> ImageDataset | None:
        """The split named by :attr:`eval_split`."""
        return self.val if self.val is not None else self.test

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train.input_shape

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for a run's ``config.json`` and ``--json`` output."""
        return {
            "name": self.train.name.split("/")[0],
            "source": self.train.source,
            "kind": self.train.kind,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "sizes": {split: len(ds) for split, ds in (("train", self.train), ("val", self.val), ("test", self.test)) if ds is not None},
            "test_official": self.test_official,
            "eval_split": self.eval_split,
            "seed": self.seed,
            "skipped": list(self.skipped),
        }


def dominant_classes(segmentation: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Each image's label for a segmentation set: the non-background class covering the most pixels (0 if none).

    ``(N, H, W)`` integer class maps -> ``(N,) int64``; one ``bincount`` for the whole set.
    """
    n = segmentation.shape[0]
    offsets = torch.arange(n, device=segmentation.device)[:, None, None] * num_classes  # bin = image * K + class
    areas = torch.bincount((segmentation.long() + offsets).flatten(), minlength=n * num_classes).view(n, num_classes)
    areas[:, 0] = 0  # the background is the label only of an image with nothing else
    return torch.where(areas[:, 1:].sum(1) > 0, areas.argmax(1), 0)


def check_fraction(value: float, argument: str) -> float:
    """``value`` as a float in ``[0, 1)``; a ValueError naming ``argument`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"`{argument}` must be a fraction in [0, 1), e.g. 0.1 for 10%. Received: {argument}={value!r}")
    return float(value)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(keep, held_out)`` with about ``fraction`` of every class held out, the same for the same seed.

    Per class ``c`` with ``n_c`` samples, ``round(fraction * n_c)`` are held out,
    at least 1 and at most ``n_c - 1`` (a class of one sample stays in ``keep``).
    ``stream`` separates independent splits drawn from one seed (test vs val).
    Both index tensors are sorted, so the data keeps its original order.

    ``labels``: ``(N,) int64`` -> two ``int64`` index tensors partitioning ``0 .. N-1``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    labels_np = labels.cpu().numpy()
    held: list[np.ndarray] = []
    for c in np.unique(labels_np):
        members = np.flatnonzero(labels_np == c)
        if fraction == 0.0 or members.size < 2:
            continue
        count = min(max(1, round(fraction * members.size)), members.size - 1)
        held.append(rng.permutation(members)[:count])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(labels_np.size), held_out, assume_unique=True)
    return torch.from_numpy(keep.astype(np.int64)), torch.from_numpy(held_out.astype(np.int64))


# streams of stratified_split, so that the test split and the val split of one seed are independent draws
TEST_STREAM = 1
VAL_STREAM = 2


def split_off(ds: ImageDataset, fraction: float, seed: int, stream: int, names: tuple[str, str]) -> tuple[ImageDataset, ImageDataset]:
    """``ds`` split in two by :func:`stratified_split`, named ``names`` (e.g. ``("digits/train", "digits/val")``)."""
    keep, held_out = stratified_split(ds.labels, fraction, seed, stream)
    return ds.subset(keep, names[0]), ds.subset(held_out, names[1])
