"""Reader for the IDX files of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number, then one big-endian uint32 per
dimension, then the values, row-major::

    magic = 0x00 0x00 <type> <ndim>       type 0x08 = uint8, ... ; ndim 3 for images, 1 for labels
    dims  = ndim x uint32 (big-endian)    e.g. 60000 28 28
    data  = prod(dims) values

so images carry the magic number ``0x00000803`` and labels ``0x00000801``. The
whole file is read in one call and viewed with ``numpy.frombuffer``: Fashion-MNIST's
training images (26 MB gzip, 47 MB raw) load in a fraction of a second.

A gzipped file is decompressed once: the raw bytes are kept in a cache folder
(``$CNNKIT_CACHE``, else ``$XDG_CACHE_HOME/cnnkit``, else ``~/.cache/cnnkit``;
``CNNKIT_CACHE=off`` keeps nothing), named by the file's path, size and
modification time, so a changed file is decompressed again. Every run of
``cnnkit train`` on Fashion-MNIST saves the 0.3-0.4 s of gunzip (twice: training
and evaluation). A cached copy whose size does not match its header is ignored.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from cnnkit.fileio import atomic_write, check_regular

# the type byte of the magic number -> numpy dtype (big-endian, as the format stores them)
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_SIGNATURE = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed if it starts with the gzip signature (whatever its name)."""
    try:
        check_regular(path)
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist. Received: path={str(path)!r}") from None
    if not raw.startswith(_GZIP_SIGNATURE):
        return raw
    cached = _cache_path(path)
    if cached is not None:
        kept = _read_cached(cached)
        if kept is not None:
            return kept
    try:
        data = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"IDX file {str(path)!r} is a damaged gzip file ({error}); download or copy it again. "
            f"Received: {len(raw)} compressed bytes"
        ) from error
    if cached is not None:
        with contextlib.suppress(OSError):  # a read-only or full home: the cache is only a shortcut
            atomic_write(cached, data)
    return data


def cache_folder() -> Path | None:
    """Where decompressed IDX files are kept (module doc), or None when ``CNNKIT_CACHE=off``."""
    chosen = os.environ.get("CNNKIT_CACHE", "").strip()
    if chosen.lower() in ("off", "0", "no", "false"):
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "cnnkit"


def _cache_path(path: Path) -> Path | None:
    folder = cache_folder()
    if folder is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{path.resolve()}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:24]
    return folder / "idx" / f"{path.name.removesuffix('.gz')}.{key}.raw"


def _read_cached(cached: Path) -> bytes | None:
    """The cached raw bytes, if the file is there, regular and as long as its own header says; else None."""
    try:
        check_regular(cached)
        data = cached.read_bytes()
    except (OSError, ValueError):
        return None
    if len(data) < 4 or data[2] not in _DTYPES:
        return None
    ndim, itemsize = data[3], _DTYPES[data[2]].itemsize
    if len(data) < 4 + 4 * ndim:
        return None
    shape = np.frombuffer(data, dtype=">u4", count=ndim, offset=4)
    return data if len(data) == 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64)) * itemsize else None


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in the IDX file at ``path`` (gzip or raw), with its stored shape and dtype.

    The header is checked against the file's size: a truncated file is a
    ValueError naming the file and the byte counts expected and found.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(
            f"{str(path)!r} is not an IDX file: it must start with the bytes 00 00 <type> <ndim> (type one of "
            f"{', '.join(f'0x{t:02x}' for t in _DTYPES)}). Received: first bytes {data[:4].hex(' ') or '(empty file)'}"
        )
    dtype, ndim = _DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated: its header needs {header} bytes for {ndim} dimensions. "
            f"Received: {len(data)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "is truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"IDX file {str(path)!r} {problem}: a {' x '.join(map(str, shape))} array of {dtype.name} needs "
            f"{expected} bytes (header {header} + data {expected - header}); download or copy it again. "
            f"Received: {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _read_checked(path: Path, magic: int, ndim: int, what: str) -> np.ndarray:
    array = read_idx(path)
    found = (0x08 << 8) | array.ndim if array.dtype == np.uint8 else None
    if found != magic or array.ndim != ndim:
        raise ValueError(
            f"IDX file {str(path)!r} does not hold {what}: expected magic number 0x{magic:08x} (uint8, {ndim} dimensions). "
            f"Received: dtype {array.dtype.name}, shape {array.shape}"
        )
    return array


def read_idx_images(path: str | Path) -> torch.Tensor:
    """Images from an IDX file with magic number ``0x00000803``: ``(N, H, W) uint8`` -> ``(N, 1, H, W) uint8``."""
    array = _read_checked(Path(path), IMAGES_MAGIC, 3, "images")
    # frombuffer views immutable bytes; one copy gives torch a writable tensor it owns
    return torch.from_numpy(array.copy()).unsqueeze(1)


def read_idx_labels(path: str | Path, num_classes: int | None = None) -> torch.Tensor:
    """Labels from an IDX file with magic number ``0x00000801``: ``(N,) int64``.

    With ``num_classes``, a label outside ``[0, num_classes)`` is a ValueError
    naming the file, the label and its position.
    """
    labels = torch.from_numpy(_read_checked(Path(path), LABELS_MAGIC, 1, "labels").astype(np.int64))
    if num_classes is not None and labels.numel() > 0:
        bad = torch.nonzero(labels >= num_classes)
        if bad.numel() > 0:
            position = int(bad[0, 0])
            raise ValueError(
                f"IDX label file {str(path)!r}: label {int(labels[position])} at index {position} is out of range "
                f"[0, {num_classes}); the file does not belong to this dataset or is damaged. "
                f"Received: {bad.numel()} labels out of range"
            )
    return labels


def read_idx_pair(images_path: str | Path, labels_path: str | Path, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 1, H, W) uint8, labels (N,) int64)`` from two IDX files whose counts must agree."""
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path, num_classes)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"IDX files {str(images_path)!r} and {str(labels_path)!r} must hold as many labels as images; "
            f"they are not a pair. Received: {images.shape[0]} images, {labels.shape[0]} labels"
        )
    return images, labels
