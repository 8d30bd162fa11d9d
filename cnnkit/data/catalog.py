"""``load(name)``: one entry point that resolves a dataset name to its splits.

Known names::

    fashion-mnist   60,000 + 10,000 official test, (1, 28, 28), 10 classes     IDX files
    mnist           60,000 + 10,000 official test, (1, 28, 28), 10 digits      IDX files
    digits          scikit-learn 8x8 digits, 1,797, 20% stratified test split
    shapes          synthetic shapes with boxes and masks, (3, 32, 32), 6 classes
    shapes-seg      synthetic scenes of 1-3 shapes with a class per pixel
    folder:PATH     one sub-folder per class (PNG, JPEG, BMP, WebP), or images/ + masks/ for segmentation
    packed:PATH     a folder packed by ``cnnkit data pack`` (:mod:`cnnkit.data.packed`)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cnnkit.data.convert import conform, image_size_pair
from cnnkit.data.dataset import VAL_STREAM, DataSplits, ImageDataset, check_fraction, split_off
from cnnkit.data.digits import load_digits
from cnnkit.data.folder import load_folder
from cnnkit.data.mnist import load_idx_dataset
from cnnkit.data.pairs import is_pair_folder, load_pairs
from cnnkit.data.select import parse_classes, per_class_subset, select_classes
from cnnkit.data.shapes import load_shapes

DATASETS: dict[str, str] = {
    "fashion-mnist": "Zalando's clothing images: 60,000 train + 10,000 official test, 1x28x28, 10 classes",
    "mnist": "handwritten digits: 60,000 train + 10,000 official test, 1x28x28, 10 classes",
    "digits": "scikit-learn's handwritten digits: 1,797 images, 1x8x8, 10 classes, 20% test split",
    "shapes": "synthetic shapes with boxes and masks: 10,000 images, 3x32x32, 6 classes, 20% test split",
    "shapes-seg": "synthetic scenes of 1-3 shapes with a class per pixel: 4,000 images, 3x32x32, 7 classes",
    "shapes-loc": "synthetic shapes, one per image with its box and mask, on a textured background: 6,000 images, "
                  "3x64x64, 6 classes",
    "shapes-det": "synthetic scenes of 1-6 overlapping shapes, a box and a mask each, on a textured background: "
                  "4,000 images, 3x64x64, 6 classes",
    "folder:PATH": "your images, one sub-folder per class, or images/ + masks/ (class id per pixel) for segmentation "
                   "(either also inside train/ and test/ or val/)",
    "packed:PATH": "an image, segmentation or COCO folder packed once by `cnnkit data pack` (decoded uint8, read on "
                   "demand: larger than memory is fine)",
    "coco:PATH": "your detection data in COCO format: annotations.json beside the images (or in train/ and test/ or "
                 "val/), read with pycocotools",
}
_FOLDER = "folder:"
_PACKED = "packed:"
_COCO = "coco:"


def _unknown(name: str) -> ValueError:
    known = [n for n in DATASETS if n != "folder:PATH"]
    near = difflib.get_close_matches(name.lower(), known, n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    if Path(name).is_dir():
        hint += f" For a folder of images, write 'folder:{name}'."
    return ValueError(f"unknown dataset {name!r}.{hint} Known: {', '.join(DATASETS)}. Received: name={name!r}")


def _check_args(seed: int, num_samples: int | None, name: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
    if num_samples is not None and not name.startswith("shapes"):
        raise ValueError(
            f"`num_samples` sets how many images a synthetic dataset draws (shapes, shapes-seg); {name!r} has a fixed "
            f"size. Received: num_samples={num_samples!r}"
        )


def _resolve(name: str, data_dir: str | Path | None, size: tuple[int, int] | None, grayscale: bool | None, seed: int,
             skip_bad_images: bool, download: bool, num_samples: int | None) -> DataSplits:
    """The dataset's own splits, at the asked size and channels."""
    if name.startswith(_FOLDER):
        path = name[len(_FOLDER):]
        if not path:
            raise ValueError(f"`folder:` needs a path, e.g. folder:./my_images. Received: name={name!r}")
        loader = load_pairs if is_pair_folder(Path(path)) else load_folder
        return loader(path, size, grayscale, skip_bad_images)
    if name.startswith(_PACKED):
        from cnnkit.data.packed import load_packed

        if not name[len(_PACKED):]:
            raise ValueError(f"`packed:` needs a folder made by `cnnkit data pack`, e.g. packed:photos.cnnkit. "
                             f"Received: name={name!r}")
        splits = load_packed(name[len(_PACKED):], in_memory=False, seed=seed)  # read on demand: larger than memory is fine
        shape = splits.train.input_shape
        if (size is not None and tuple(size) != shape[1:]) or (grayscale is not None and (shape[0] == 1) != grayscale):
            raise ValueError(f"{name}: packed at {'x'.join(map(str, shape))}; --image-size and --grayscale cannot "
                             f"change a pack (pack the folder again at the size wanted). Received: image_size={size}, "
                             f"grayscale={grayscale}")
        return splits
    if name.startswith(_COCO):
        from cnnkit.data.coco import load_coco

        if not name[len(_COCO):]:
            raise ValueError(f"`coco:` needs a path, e.g. coco:./my_boxes. Received: name={name!r}")
        return load_coco(name[len(_COCO):], size, grayscale, seed, skip_bad_images)
    if name in ("fashion-mnist", "mnist"):
        splits = load_idx_dataset(name, data_dir, download)
    elif name == "digits":
        splits = load_digits(seed)
    elif name in ("shapes", "shapes-seg"):
        # drawn at the asked size directly, so boxes and masks stay exact
        splits = load_shapes(name == "shapes-seg", num_samples, size, seed)
        size = None
    elif name in ("shapes-loc", "shapes-det"):
        from cnnkit.data.objects import load_objects

        splits = load_objects(name == "shapes-det", num_samples, size, seed)
        size = None
    else:
        raise _unknown(name)
    if size is None and grayscale is None:
        return splits
    test = None if splits.test is None else conform(splits.test, size, grayscale)
    return replace(splits, train=conform(splits.train, size, grayscale), test=test)


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    image_size: int | tuple[int, int] | None = None,
    grayscale: bool | None = None,
    val_split: float = 0.0,
    seed: int = 0,
    skip_bad_images: bool = False,
    download: bool = False,
    num_samples: int | None = None,
    classes: Sequence[str | int] | None = None,
    train_per_class: int | None = None,
) -> DataSplits:
    """Load the dataset ``name`` (see :data:`DATASETS`) as in-memory ``(N, C, H, W) uint8`` splits.

    Arguments:
        data_dir: where to look first for fashion-mnist / mnist files.
        image_size: resize every image to this (int = square, or (H, W));
            None keeps the dataset's size (folders: 64).
        grayscale: True -> 1 channel, False -> 3 channels, None -> the dataset's own.
        val_split: fraction of each training class carved off as ``val``
            (stratified, by ``seed``); 0 = no validation split.
        seed: seed of every split cnnkit makes and of synthetic data.
        skip_bad_images: image and COCO folders: leave out files that do not decode
            (recorded in ``DataSplits.skipped``) instead of failing.
        download: fashion-mnist / mnist: fetch the official files when no
            local copy exists (checksum-verified, into the cache directory).
        num_samples: shapes / shapes-seg: how many images to draw.
        classes: keep only these classes (names, indices or ranges such as
            ``"5-9"``), relabelled 0.. in the order given, in every split.
        train_per_class: keep this many training images of each class, a
            stratified draw by ``seed`` (after ``val_split`` is carved off,
            so validation and test images never change with it).

    >>> splits = load("digits", val_split=0.1)
    >>> splits.train.images.shape[1:], splits.eval_split
    (torch.Size([1, 8, 8]), 'val')
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a dataset name such as 'fashion-mnist'. Received: {type(name).__name__} {name!r}")
    _check_args(seed, num_samples, name)
    fraction = check_fraction(val_split, "val_split")
    size = None if image_size is None else image_size_pair(image_size)
    splits = _resolve(name.strip(), data_dir, size, grayscale, seed, skip_bad_images, download, num_samples)
    return refine(splits, name, classes=classes, val_split=fraction, seed=seed, train_per_class=train_per_class)


def refine(splits: DataSplits, name: str, *, classes: Sequence[str | int] | None = None, val_split: float = 0.0,
           seed: int = 0, train_per_class: int | None = None) -> DataSplits:
    """``splits`` cut as :func:`load`'s arguments of the same names say: the classes kept, the validation split
    carved off, the training images per class; loaded datasets and a user's own arrays alike."""
    fraction = check_fraction(val_split, "val_split")
    splits = replace(splits, seed=seed)
    if classes:
        splits = _select(splits, parse_classes(classes, splits.class_names))
    if fraction > 0.0:
        splits = _split_val(splits, name, fraction, seed, val_split)
    if train_per_class is not None:
        splits = replace(splits, train=per_class_subset(splits.train, train_per_class, seed))
    return splits


def _select(splits: DataSplits, indices: list[int]) -> DataSplits:
    if splits.train.kind == "segmentation":
        raise ValueError(f"{splits.train.name}: --classes cuts classification datasets; a segmentation dataset "
                         f"labels every pixel. Received: classes={indices}")

    def cut(ds: ImageDataset | None) -> ImageDataset | None:
        return None if ds is None else select_classes(ds, indices)

    return replace(splits, train=select_classes(splits.train, indices), test=cut(splits.test), val=cut(splits.val))


def _split_val(splits: DataSplits, name: str, fraction: float, seed: int, val_split: float) -> DataSplits:
    if splits.val is not None:
        raise ValueError(
            f"{name}: the dataset has its own validation split ({splits.val.source}); leave val_split at 0 or remove "
            f"that folder. Received: val_split={val_split}"
        )
    base = splits.train.name.rsplit("/", 1)[0]
    train, val = split_off(splits.train, fraction, seed, VAL_STREAM, (f"{base}/train", f"{base}/val"))
    return replace(splits, train=train, val=val)
