"""Image folders: one sub-folder per class, decoded with Pillow into one uint8 tensor.

Two layouts are understood::

    PATH/cat/001.jpg  PATH/dog/002.png ...                  one tree: classes = sorted sub-folder names
    PATH/train/cat/...  PATH/test/cat/...  (or PATH/val/)   given splits: classes from train/

Files may sit in nested folders below a class folder; PNG, JPEG, BMP and
WebP are read (hidden files, such as ``.DS_Store``, are ignored). Each image
is read by :func:`cnnkit.images.decode` (converted to RGB or grey, its centre cut to the
target aspect ratio and resized, bilinear, to ``image_size``), as ``cnnkit predict`` reads a file. Decompression bombs (more pixels
than ``PIL.Image.MAX_IMAGE_PIXELS``) are refused. A file that is not an
image or does not decode is a ValueError naming it, or, with
``skip_bad_images=True``, left out and recorded in ``skipped``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.data.dataset import DataSplits, ImageDataset
from cnnkit.images import EXTENSIONS, BadImage, decode, to_channels
from cnnkit.progress import Ticker

DEFAULT_SIZE = (64, 64)
_SPLIT_NAMES = ("train", "val", "test")


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        images = [p.name for p in root.iterdir() if p.suffix.lower() in EXTENSIONS]
        raise ValueError(
            f"image folder {str(root)!r} must hold one sub-folder per class (e.g. {root}/cat/1.jpg, {root}/dog/2.jpg). "
            f"Received: no sub-folders" + (f", {len(images)} image files directly inside" if images else "")
        )
    return dirs


def _list_files(class_dir: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return files


@dataclass
class _Tree:
    """The decoded content of one class-folder tree."""

    pixels: list[np.ndarray]  # (H, W, 3) uint8 each
    labels: list[int]
    files: list[str]
    skipped: list[str]  # "path: reason"
    all_grey: bool  # every image was stored grey
    class_names: tuple[str, ...]


def _read_tree(root: Path, class_names: tuple[str, ...] | None, size: tuple[int, int], skip_bad_images: bool) -> _Tree:
    """Decode every image below ``root``'s class folders (classes: their sorted names, or ``class_names``)."""
    dirs = _class_dirs(root)
    names = tuple(d.name for d in dirs) if class_names is None else class_names
    if class_names is None and len(names) < 2:
        raise ValueError(
            f"image folder {str(root)!r} must hold at least two class folders to learn to tell classes apart. "
            f"Received: one class folder, {names[0]!r}"
        )
    jobs: list[tuple[Path, int]] = []
    others: list[Path] = []  # files that are not images by their extension
    for directory in dirs:
        if directory.name not in names:
            raise ValueError(
                f"image folder {str(root)!r}: class folder {directory.name!r} is not a class of the training split "
                f"{list(names)}; rename or remove it. Received: {str(directory)!r}"
            )
        files = _list_files(directory)
        others += [path for path in files if path.suffix.lower() not in EXTENSIONS]
        files = [path for path in files if path.suffix.lower() in EXTENSIONS]
        if not files:
            raise ValueError(f"class folder {str(directory)!r} holds no image; put images in it or remove it. "
                             f"Received: 0 files with the extensions read ({', '.join(EXTENSIONS)})")
        jobs += [(path, names.index(directory.name)) for path in files]
    if others:  # a README.txt or a spreadsheet beside the photos: left out, said, never fatal
        shown = ", ".join(str(path) for path in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        warnings.warn(f"image folder {str(root)!r}: left out {len(others)} file(s) that are not images (extensions "
                      f"read: {', '.join(EXTENSIONS)}): {shown}", UserWarning, stacklevel=2)

    def read(job: tuple[Path, int]) -> tuple[np.ndarray, bool, tuple[int, int]] | str:
        try:
            return decode(job[0], size)
        except BadImage as error:
            return str(error)

    # Pillow releases the GIL while decoding and resizing, so threads decode in parallel. decode refuses
    # oversized images itself; Pillow's warning for them is silenced once here, outside the threads.
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, \
            Ticker(f"decoding image folder {root}", len(jobs), "images") as ticker:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        results = []
        for result in pool.map(read, jobs):
            results.append(result)
            ticker.advance()
    tree = _Tree([], [], [], [f"{path}: not an image file" for path in others], True, names)
    for (path, label), result in zip(jobs, results, strict=True):
        if isinstance(result, str):
            if not skip_bad_images:
                raise ValueError(
                    f"image file {str(path)!r} {result}; or pass skip_bad_images=True (--skip-bad-images) to leave "
                    f"such files out. Received: a file of {path.stat().st_size} bytes"
                )
            tree.skipped.append(f"{path}: {result}")
            continue
        tree.pixels.append(result[0])
        tree.all_grey &= result[1]
        tree.labels.append(label)
        tree.files.append(str(path))
    for directory in dirs:
        if names.index(directory.name) not in tree.labels:
            raise ValueError(
                f"class folder {str(directory)!r} has no readable image left after skipping bad files. "
                f"Received: {sum(s.startswith(str(directory) + os.sep) for s in tree.skipped)} files skipped"
            )
    return tree


def _dataset(name: str, root: Path, tree: _Tree, grey: bool) -> ImageDataset:
    images = torch.from_numpy(np.stack(tree.pixels)).permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)
    images = to_channels(images, 1 if grey else 3, tree.all_grey).contiguous()
    labels = torch.tensor(tree.labels, dtype=torch.int64)
    return ImageDataset(images, labels, tree.class_names, name, str(root), files=tuple(tree.files), skipped=tuple(tree.skipped))


def load_folder(path: str | Path, image_size: tuple[int, int] | None = None, grayscale: bool | None = None,
                skip_bad_images: bool = False) -> DataSplits:
    """The image folder at ``path`` as ``(N, C, H, W) uint8`` splits.

    ``grayscale``: ``True`` -> 1 channel, ``False`` -> 3, ``None`` -> 1 when every
    image is grey, else 3. ``image_size`` defaults to 64 x 64. With the one-tree
    layout everything is ``train`` (carve a validation split with ``val_split``);
    with ``train/`` + ``test/`` or ``val/`` sub-folders, those are the splits.

    The first load decodes every file (:func:`decode_folder`) and packs the result into the cache
    (:mod:`cnnkit.data.packed`); a later load at the same size and channels reads the pack instead, unless a
    file of the folder changed since (then it decodes again). ``CNNKIT_CACHE=off`` always decodes.
    """
    from cnnkit.data import packed

    root = Path(path)
    _check_root(root, path)
    size = image_size or DEFAULT_SIZE
    cached = packed.cache_path(root, size, grayscale, skip_bad_images)
    files = packed.listing(root)
    if cached is not None and packed.is_current(cached, root, files):
        with contextlib.suppress(ValueError, OSError):  # a damaged pack: decoded again below, and replaced
            return packed.load_packed(cached, as_decoded=True)
    splits = decode_folder(root, size, grayscale, skip_bad_images)
    if cached is not None:
        with contextlib.suppress(OSError):  # a read-only or full cache: the pack is only a shortcut
            packed.write_pack(splits, root, cached, size, grayscale, skip_bad_images, files)
    return splits


def _check_root(root: Path, path: str | Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist. Received: folder:{path}")
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} is a file, not a folder of class sub-folders. Received: folder:{path}")


def decode_folder(root: Path, size: tuple[int, int], grayscale: bool | None = None,
                  skip_bad_images: bool = False) -> DataSplits:
    """Decode every image of the class-folder tree ``root`` (:func:`load_folder`, without the cache)."""
    _check_root(root, root)
    subdirs = {d.name for d in _class_dirs(root)}
    split_layout = "train" in subdirs and subdirs <= set(_SPLIT_NAMES) and len(subdirs) > 1
    roots = {split: root / split for split in _SPLIT_NAMES if split in subdirs} if split_layout else {"train": root}

    trees: dict[str, _Tree] = {}
    class_names: tuple[str, ...] | None = None
    for split, split_root in roots.items():  # train first: it fixes the class names of the others
        trees[split] = _read_tree(split_root, class_names, size, skip_bad_images)
        class_names = trees[split].class_names
    grey = all(tree.all_grey for tree in trees.values()) if grayscale is None else grayscale
    splits = {split: _dataset(f"folder/{split}", roots[split], tree, grey) for split, tree in trees.items()}
    return DataSplits(
        train=splits["train"],
        test=splits.get("test"),
        val=splits.get("val"),
        test_official="test" in splits,
        skipped=tuple(s for tree in trees.values() for s in tree.skipped),
    )
