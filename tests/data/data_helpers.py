"""Small files the data tests write themselves: IDX files and image folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 00 00 08 <ndim>, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(directory: Path, n_train: int = 20, n_test: int = 10, gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """Four small IDX files in ``directory`` with the MNIST file names; returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        MNIST_STEMS[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        MNIST_STEMS[1]: (np.arange(n_train) % 10).astype(np.uint8),
        MNIST_STEMS[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        MNIST_STEMS[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, array in arrays.items():
        write_idx(directory / (stem + (".gz" if gz else "")), array, gz)
    return arrays


def write_image(path: Path, colour: tuple[int, ...] | int, size: tuple[int, int] = (20, 12), mode: str = "RGB") -> Path:
    """A solid-colour image of ``size`` (width, height), format from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def colour_folder(root: Path) -> Path:
    """Two classes, 'blue' and 'red', three RGB images each in PNG, JPEG, BMP and WebP."""
    write_image(root / "red" / "a.png", (255, 0, 0))
    write_image(root / "red" / "b.bmp", (250, 0, 0), size=(30, 30))
    write_image(root / "red" / "sub" / "c.webp", (255, 0, 0), size=(8, 40))
    write_image(root / "blue" / "a.png", (0, 0, 255))
    write_image(root / "blue" / "b.jpg", (0, 0, 255), size=(64, 48))
    write_image(root / "blue" / "c.png", (0, 0, 250))
    return root
