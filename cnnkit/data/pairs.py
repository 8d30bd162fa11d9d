"""Segmentation folders: images and their masks, paired by file name.

Two layouts are understood::

    PATH/images/001.jpg  PATH/masks/001.png                 one set: carve held-out data with val_split
    PATH/train/images/...  PATH/train/masks/...  PATH/test/...  (or PATH/val/...)   given splits
    PATH/classes.txt (or PATH/train/classes.txt)             optional: line i names class id i

A mask is a one-channel image (grey levels, or a palette PNG's indices) whose
value at each pixel is that pixel's class id, ``0`` being the background. It
has its image's file name (the extension may differ: ``001.jpg`` pairs with
``001.png``) and exactly its image's size; a missing mask, a mask without
an image and a mask of another size are errors that name the file. Images
are centre-cropped and resized like any image folder (bilinear); their masks
get the same crop, resized by nearest neighbour so class ids stay class ids.
Without ``classes.txt`` the classes are ``background, class 1, ...`` up to
the largest id found. A folder is decoded once into a pack (its class maps
beside its images) and read from it later, as class folders are; large ones
are decoded by worker processes (:mod:`cnnkit.data.decoding`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.data.dataset import DataSplits, ImageDataset, dominant_classes
from cnnkit.data.decoding import Decoded, Failure, Item, Unreadable, decode_into
from cnnkit.data.folder import DEFAULT_SIZE
from cnnkit.images import EXTENSIONS, BadImage, crop_box, decode, read_class_ids, write_png

SPLIT_NAMES = ("train", "val", "test")
CLASSES_FILE = "classes.txt"


def is_pair_folder(root: Path) -> bool:
    """Whether ``root`` holds ``images/`` and ``masks/``, directly or in ``train/``."""
    base = root / "train" if (root / "train").is_dir() else root
    return (base / "images").is_dir() and (base / "masks").is_dir()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _pairs(split_root: Path) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of one split, matched by file name without extension."""
    images_dir, masks_dir = split_root / "images", split_root / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise ValueError(f"segmentation folder {str(split_root)!r} must hold images/ and masks/. "
                             f"Received: no {folder.name}/ folder")
    masks: dict[str, Path] = {}
    for mask in _files(masks_dir):
        if mask.stem in masks:
            raise ValueError(f"mask files {str(masks[mask.stem])!r} and {str(mask)!r} have the same name; keep one")
        masks[mask.stem] = mask
    pairs = []
    for image in _files(images_dir):
        if image.stem not in masks:
            raise ValueError(f"image {str(image)!r} has no mask: expected {masks_dir / image.stem!s}.png (the image's "
                             f"file name, any of {', '.join(EXTENSIONS)}) holding a class id per pixel")
        pairs.append((image, masks.pop(image.stem)))
    if masks:
        orphan = next(iter(masks.values()))
        raise ValueError(f"mask {str(orphan)!r} has no image of the same name in {str(images_dir)!r}; add the image "
                         f"or remove the mask ({len(masks)} such mask(s))")
    if not pairs:
        raise ValueError(f"segmentation folder {str(images_dir)!r} is empty; put images in it. Received: 0 files")
    return pairs


def _nearest(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids resized to ``size`` = (H, W) over the same centre box as the image, nearest neighbour."""
    left, top, right, bottom = crop_box((ids.shape[1], ids.shape[0]), size)
    h, w = size
    rows = np.floor(top + (np.arange(h) + 0.5) * (bottom - top) / h).astype(np.int64).clip(0, ids.shape[0] - 1)
    cols = np.floor(left + (np.arange(w) + 0.5) * (right - left) / w).astype(np.int64).clip(0, ids.shape[1] - 1)
    return ids[rows[:, None], cols[None, :]]


def read_pair(job: tuple[Path, Path], size: tuple[int, int]) -> Item:
    """The pair ``(image, mask)`` read (:data:`cnnkit.data.decoding.Item`): the image fitted to ``size``, the mask's
    class ids cut and resized alike. A file that does not decode may be skipped; a mask of another size than its
    image, or holding a class id past 255, is an error in any case (:class:`~cnnkit.data.decoding.Failure`)."""
    image, mask = job
    try:
        pixels, grey, source = decode(image, size)
    except BadImage as error:
        raise Unreadable(Failure(str(image), "image", str(error))) from None
    try:
        ids = read_class_ids(mask)
    except BadImage as error:
        raise Unreadable(Failure(str(mask), "mask", str(error))) from None
    if (ids.shape[1], ids.shape[0]) != source:
        # not skippable: a mask of another size belongs to another image, or was cropped by hand
        raise Unreadable(Failure(str(mask), "mask", fatal=True, reason=(
            f"mask {str(mask)!r} is {ids.shape[1]}x{ids.shape[0]} pixels but its image {str(image)!r} is "
            f"{source[0]}x{source[1]} (width x height); a mask must have its image's size")))
    if int(ids.max()) > 255:
        raise Unreadable(Failure(str(mask), "mask", fatal=True, reason=(
            f"mask {str(mask)!r} holds class id {int(ids.max())}; class ids must be 0-255")))
    return pixels, grey, source, _nearest(ids, size).astype(np.uint8)


def _class_names(root: Path, largest: int) -> tuple[str, ...]:
    path = root / CLASSES_FILE
    if not path.is_file() and (root / "train" / CLASSES_FILE).is_file():  # save_pairs into train/ and test/
        path = root / "train" / CLASSES_FILE
    if not path.is_file():
        return ("background", *(f"class {i}" for i in range(1, max(largest, 1) + 1)))
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(names) <= largest:
        raise ValueError(f"{str(path)!r} names {len(names)} classes (ids 0-{len(names) - 1}) but a mask holds class id "
                         f"{largest}; add a line per class or fix the masks")
    return names


def pack_pairs(root: Path, size: tuple[int, int], grayscale: bool | None, skip_bad_images: bool, out: Path,
               files: list[list[Any]] | None = None) -> Path:
    """Decode the segmentation folder ``root`` (module doc) a batch at a time into the pack ``out``
    (:mod:`cnnkit.data.packed`): images, and their class maps as the array ``segmentation``. Each image's label is
    its largest non-background class; the class names are fixed once every mask has been read."""
    from cnnkit.data import packed

    given = [s for s in SPLIT_NAMES if (root / s / "images").is_dir()]
    roots = {s: root / s for s in given} if "train" in given else {"train": root}
    jobs = {split: _pairs(split_root) for split, split_root in roots.items()}  # every pairing checked first
    largest = 0

    def annotate(kept: list[int], batch: Decoded) -> tuple[list[int], dict[str, np.ndarray]]:
        nonlocal largest
        assert batch.masks is not None  # read_pair reads masks
        largest = max(largest, int(batch.masks.max()))
        return dominant_classes(torch.from_numpy(batch.masks), 256).tolist(), {"segmentation": batch.masks}

    with packed.PackWriter(out, root, size, grayscale, skip_bad_images, files) as writer:
        for split, split_root in roots.items():
            split_writer = writer.split(split, f"folder/{split}", str(split_root))
            decode_into(split_writer, jobs[split], size, skip_bad_images, annotate,
                        f"decoding segmentation folder {split_root}", read=read_pair)
            if not split_writer.count:
                raise ValueError(f"segmentation folder {str(split_root)!r} has no readable pair left after skipping "
                                 f"bad files")
        writer.finish("test" in roots, _class_names(root, largest))
    return out


def load_pairs(path: str | Path, image_size: tuple[int, int] | None = None, grayscale: bool | None = None,
               skip_bad_images: bool = False) -> DataSplits:
    """The segmentation folder at ``path`` as splits with ``segmentation`` class maps ``(N, H, W) uint8``.

    ``grayscale`` and ``image_size`` (default 64 x 64) as for image folders; ``labels`` is each image's largest
    non-background class (0 when it has none). Packed into the cache the first time and read from the pack
    later, as image folders are (:func:`cnnkit.data.packed.load_cached`).
    """
    from cnnkit.data import packed

    root = Path(path)
    size = image_size or DEFAULT_SIZE
    return packed.load_cached(root, packed.cache_key(root, size, grayscale, skip_bad_images, "pairs"),
                              lambda out, files: pack_pairs(root, size, grayscale, skip_bad_images, out, files))


def save_pairs(data: ImageDataset, root: str | Path) -> Path:
    """Write a segmentation dataset as a folder this module reads: ``root/images/*.png``, ``root/masks/*.png``
    (class ids) and ``root/classes.txt``; e.g. to look at ``shapes-seg`` or to start a dataset of your own.

    Returns ``root``. Files are named ``00000.png``, ``00001.png``, ... in the dataset's order.
    """
    if data.segmentation is None:
        raise ValueError(f"dataset {data.name!r} has no class maps to write as masks; it is not a segmentation dataset")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(len(data))))
    for i in range(len(data)):
        pixels = data.images[i].permute(1, 2, 0).numpy()  # (H, W, C)
        write_png(root / "images" / f"{i:0{digits}d}.png", pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        write_png(root / "masks" / f"{i:0{digits}d}.png", data.segmentation[i].numpy())
    (root / CLASSES_FILE).write_text("".join(f"{name}\n" for name in data.class_names), encoding="utf-8")
    return root
