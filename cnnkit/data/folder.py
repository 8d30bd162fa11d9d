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
``skip_bad_images=True``, left out and recorded in ``skipped``. A folder of
2,048 files or more is decoded by worker processes (:mod:`cnnkit.data.decoding`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.data.dataset import DataSplits
from cnnkit.data.decoding import decode_into
from cnnkit.images import EXTENSIONS

if TYPE_CHECKING:
    from cnnkit.data.packed import SplitWriter

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
class _Plan:
    """What one class-folder tree holds, before decoding: the image files with their labels."""

    jobs: list[tuple[Path, int]]  # (file, class index)
    others: list[Path]  # files that are not images by their extension
    class_names: tuple[str, ...]
    dirs: list[Path]


def _plan_tree(root: Path, class_names: tuple[str, ...] | None) -> _Plan:
    """The image files below ``root``'s class folders (classes: their sorted names, or ``class_names``), checked."""
    dirs = _class_dirs(root)
    names = tuple(d.name for d in dirs) if class_names is None else class_names
    if class_names is None and len(names) < 2:
        raise ValueError(
            f"image folder {str(root)!r} must hold at least two class folders to learn to tell classes apart. "
            f"Received: one class folder, {names[0]!r}"
        )
    jobs: list[tuple[Path, int]] = []
    others: list[Path] = []
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
                      f"read: {', '.join(EXTENSIONS)}): {shown}", UserWarning, stacklevel=3)
    return _Plan(jobs, others, names, dirs)


def _decode_split(plan: _Plan, root: Path, size: tuple[int, int], skip_bad_images: bool,
                  writer: SplitWriter) -> None:
    """Decode ``plan``'s files a batch at a time into ``writer`` (:func:`cnnkit.data.decoding.decode_into`: worker
    processes for a large folder). A file that does not decode stops here with a ValueError naming it, or is left
    out and recorded (``skip_bad_images``)."""
    writer.skipped += [f"{path}: not an image file" for path in plan.others]
    labels = [label for _, label in plan.jobs]
    decode_into(writer, [path for path, _ in plan.jobs], size, skip_bad_images,
                lambda kept, _: ([labels[i] for i in kept], {}), f"decoding image folder {root}")
    for directory in plan.dirs:
        if plan.class_names.index(directory.name) not in writer.labels:
            raise ValueError(
                f"class folder {str(directory)!r} has no readable image left after skipping bad files. "
                f"Received: {sum(s.startswith(str(directory) + os.sep) for s in writer.skipped)} files skipped"
            )


def pack_folder(root: Path, size: tuple[int, int], grayscale: bool | None, skip_bad_images: bool, out: Path,
                files: list[list[Any]] | None = None) -> Path:
    """Decode the image folder ``root`` (:func:`load_folder`'s layouts) a chunk at a time into the pack ``out``
    (:mod:`cnnkit.data.packed`): memory stays one chunk's, whatever the folder's size."""
    from cnnkit.data import packed

    _check_root(root, root)
    subdirs = {d.name for d in _class_dirs(root)}
    split_layout = "train" in subdirs and subdirs <= set(_SPLIT_NAMES) and len(subdirs) > 1
    roots = {split: root / split for split in _SPLIT_NAMES if split in subdirs} if split_layout else {"train": root}
    with packed.PackWriter(out, root, size, grayscale, skip_bad_images, files) as writer:
        class_names: tuple[str, ...] | None = None
        for split, split_root in roots.items():  # train first: it fixes the class names of the others
            plan = _plan_tree(split_root, class_names)
            class_names = plan.class_names
            _decode_split(plan, split_root, size, skip_bad_images, writer.split(split, f"folder/{split}",
                                                                                str(split_root), class_names))
        writer.finish(test_official="test" in roots)
    return out


def load_folder(path: str | Path, image_size: tuple[int, int] | None = None, grayscale: bool | None = None,
                skip_bad_images: bool = False) -> DataSplits:
    """The image folder at ``path`` as ``(N, C, H, W) uint8`` splits.

    ``grayscale``: ``True`` -> 1 channel, ``False`` -> 3, ``None`` -> 1 when every
    image is grey, else 3. ``image_size`` defaults to 64 x 64. With the one-tree
    layout everything is ``train`` (carve a validation split with ``val_split``);
    with ``train/`` + ``test/`` or ``val/`` sub-folders, those are the splits.

    The first load decodes every file and packs the result into the cache (:func:`cnnkit.data.packed.load_cached`);
    a later load at the same size and channels reads the pack instead, unless a file of the folder changed since
    (then it decodes again). ``CNNKIT_CACHE=off`` always decodes.
    """
    from cnnkit.data import packed

    root = Path(path)
    _check_root(root, path)
    size = image_size or DEFAULT_SIZE
    return packed.load_cached(root, packed.cache_key(root, size, grayscale, skip_bad_images),
                              lambda out, files: pack_folder(root, size, grayscale, skip_bad_images, out, files))


def _check_root(root: Path, path: str | Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist. Received: folder:{path}")
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} is a file, not a folder of class sub-folders. Received: folder:{path}")


def decode_folder(root: Path, size: tuple[int, int], grayscale: bool | None = None,
                  skip_bad_images: bool = False) -> DataSplits:
    """Decode every image of the class-folder tree ``root`` into memory (:func:`load_folder` without the cache)."""
    from cnnkit.data import packed

    return packed.load_decoded(lambda out, files: pack_folder(Path(root), size, grayscale, skip_bad_images, out, files))
