"""MNIST and Fashion-MNIST from their IDX files, found on disk or (if asked and allowed) downloaded.

Where the files are looked for, in order (the first directory holding all
four files wins; each file may be gzip-compressed or raw)::

    1. data_dir/<name>, then data_dir               the --data-dir argument
    2. $CNNKIT_DATA/<name>, then $CNNKIT_DATA
    3. /usr/share/datasets/<name>                   apt-get install dataset-fashion-mnist
    4. <cache>/datasets/<name>                      earlier downloads (see cache_dir)
    5. download=True: the official mirrors, MD5-checked, into 4.

Both datasets are 60,000 training and 10,000 official test images of
``(1, 28, 28) uint8`` in 10 classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnkit.data.dataset import DataSplits, ImageDataset
from cnnkit.data.download import RemoteFile, cache_dir, download
from cnnkit.data.idx import read_idx_pair

SYSTEM_DIR = Path("/usr/share/datasets")
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxDataset:
    """What is known about one IDX dataset before reading it."""

    name: str  # "fashion-mnist"
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]  # base URLs of the official .gz files, ending in "/"
    md5: tuple[str, ...]  # published MD5 of the four .gz files, in the order of _FILES
    install_hint: str  # how to get the files without the network


IDX_DATASETS: dict[str, IdxDataset] = {
    "fashion-mnist": IdxDataset(
        name="fashion-mnist",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5=(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        install_hint="`apt-get install dataset-fashion-mnist` (Debian/Ubuntu)",
    ),
    "mnist": IdxDataset(
        name="mnist",
        class_names=tuple(str(d) for d in range(10)),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        md5=(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        install_hint="the four files from https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
}


def candidate_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """The directories searched for ``name``'s files, in order (see the module docstring)."""
    dirs: list[Path] = []
    if data_dir is not None:
        # the sub-folder first: MNIST and Fashion-MNIST share file names, so a flat root may hold the other one
        dirs += [Path(data_dir) / name, Path(data_dir)]
    if os.environ.get("CNNKIT_DATA"):
        root = Path(os.environ["CNNKIT_DATA"])
        dirs += [root / name, root]
    dirs += [SYSTEM_DIR / name, cache_dir() / "datasets" / name]
    return dirs


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def find_files(name: str, data_dir: str | Path | None = None) -> tuple[Path, ...] | None:
    """The four IDX files of ``name`` from the first directory that holds them all, or ``None``.

    A directory holding some of the four but not all is an error (a broken
    download or copy), not a reason to look further.
    """
    if data_dir is not None and not Path(data_dir).is_dir():
        raise FileNotFoundError(
            f"the data directory {str(data_dir)!r} does not exist or is not a directory; pass an existing "
            f"directory holding the {name} files, or leave --data-dir out. Received: data_dir={str(data_dir)!r}"
        )
    for directory in candidate_dirs(name, data_dir):
        found = [_find_file(directory, stem) for stem in _FILES]
        present = [path for path in found if path is not None]
        if len(present) == len(_FILES):
            return tuple(present)
        if present:
            missing = [stem for stem, path in zip(_FILES, found, strict=True) if path is None]
            raise FileNotFoundError(
                f"{str(directory)!r} holds only part of {name}: {', '.join(missing)} (.gz or raw) missing; copy "
                f"or download them again. Received: {', '.join(p.name for p in present)}"
            )
    return None


def _download_all(spec: IdxDataset) -> tuple[Path, ...]:
    target = cache_dir() / "datasets" / spec.name
    return tuple(
        download(RemoteFile(f"{stem}.gz", spec.mirrors, "md5", md5), target) for stem, md5 in zip(_FILES, spec.md5, strict=True)
    )


def load_idx_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> DataSplits:
    """``name`` ("fashion-mnist" or "mnist") as train (60,000) and official test (10,000) ``(1, 28, 28) uint8``.

    Raises FileNotFoundError saying where it looked and how to get the files
    when no directory holds them (and the download, if asked for, failed).
    """
    spec = IDX_DATASETS[name]
    paths = find_files(name, data_dir)
    download_error = ""
    if paths is None and download:
        try:
            paths = _download_all(spec)
        except OSError as error:
            download_error = f" The download failed: {error}."
    if paths is None:
        looked = ", ".join(str(d) for d in candidate_dirs(name, data_dir))
        # the command line has no download flag: a download is a Python call, made once, on a machine with internet
        how = "" if download else f", or fetch them once from Python: cnnkit.data.load({name!r}, download=True)"
        raise FileNotFoundError(
            f"{name}: no directory holds the four IDX files ({', '.join(f'{s}[.gz]' for s in _FILES)}).{download_error} "
            f"Get them with {spec.install_hint}, or put them in a directory and pass it as data_dir (--data-dir DIR) "
            f"or $CNNKIT_DATA{how}. Received: looked in {looked}"
        )
    train_images, train_labels, test_images, test_labels = paths
    k = len(spec.class_names)
    source = str(train_images.parent)
    train = ImageDataset(*read_idx_pair(train_images, train_labels, k), spec.class_names, f"{name}/train", source)
    test = ImageDataset(*read_idx_pair(test_images, test_labels, k), spec.class_names, f"{name}/test", source)
    return DataSplits(train=train, test=test, val=None, test_official=True)
