"""The IDX reader on small files written here: round trips, truncation, bad magic numbers, count mismatch."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import idx_bytes, write_idx

from cnnkit.data.idx import read_idx, read_idx_images, read_idx_labels, read_idx_pair


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_images_and_labels_round_trip(tmp_path: Path, gz: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8)
    # the name says nothing: gzip is recognised by its signature
    x, y = read_idx_pair(write_idx(tmp_path / "i", images, gz), write_idx(tmp_path / "l", labels, gz), num_classes=10)
    assert x.shape == (7, 1, 5, 3) and x.dtype == torch.uint8
    assert torch.equal(x[:, 0], torch.from_numpy(images))
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    x[0, 0, 0, 0] = 1  # the tensor owns writable memory, not the file's bytes


def test_other_idx_dtypes_are_read_big_endian(tmp_path: Path) -> None:
    values = np.array([[1, -2], [300, -40000 // 2]], dtype=">i2")
    path = tmp_path / "shorts.idx"
    path.write_bytes(bytes([0, 0, 0x0B, 2]) + struct.pack(">2I", 2, 2) + values.tobytes())
    assert read_idx(path).tolist() == values.tolist()


def test_truncated_file_names_the_byte_counts(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((4, 3, 3), dtype=np.uint8))[:-5])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*is truncated.*needs 52 bytes.*Received: 47 bytes"):
        read_idx_images(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 4))
    with pytest.raises(ValueError, match=r"truncated: its header needs 16 bytes for 3 dimensions. Received: 8 bytes"):
        read_idx(path)


def test_trailing_bytes_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(4, dtype=np.uint8)) + b"xx")
    with pytest.raises(ValueError, match=r"has trailing bytes.*needs 12 bytes.*Received: 14 bytes"):
        read_idx(path)


def test_damaged_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 4, 4), dtype=np.uint8)))[:-12])
    with pytest.raises(ValueError, match=r"cut.gz' is a damaged gzip file"):
        read_idx(path)


def test_not_an_idx_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"photo.png' is not an IDX file.*Received: first bytes 89 50 4e 47"):
        read_idx(path)


def test_labels_file_is_not_images(tmp_path: Path) -> None:
    labels = write_idx(tmp_path / "labels", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"does not hold images: expected magic number 0x00000803.*shape \(3,\)"):
        read_idx_images(labels)
    images = write_idx(tmp_path / "images", np.zeros((3, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"does not hold labels: expected magic number 0x00000801"):
        read_idx_labels(images)


def test_count_mismatch(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "images", np.zeros((5, 2, 2), dtype=np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(4, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"must hold as many labels as images.*Received: 5 images, 4 labels"):
        read_idx_pair(images, labels)


def test_label_out_of_range_names_file_label_and_index(tmp_path: Path) -> None:
    labels = write_idx(tmp_path / "train-labels", np.array([1, 2, 10, 3, 12], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train-labels': label 10 at index 2 is out of range \[0, 10\).*2 labels out of range"):
        read_idx_labels(labels, num_classes=10)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing-here' does not exist"):
        read_idx(tmp_path / "nothing-here")


def test_a_gzipped_file_is_decompressed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The raw bytes are cached by path, size and time; a changed file or a damaged copy is decompressed again."""
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    images = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    path = tmp_path / "images.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(images.numpy())))
    assert torch.equal(read_idx_images(path)[:, 0], images)
    (kept,) = (tmp_path / "cache" / "idx").iterdir()
    assert kept.read_bytes() == idx_bytes(images.numpy())
    kept.write_bytes(kept.read_bytes()[:-3])  # a damaged copy: ignored, written again
    assert torch.equal(read_idx_images(path)[:, 0], images)
    assert kept.read_bytes() == idx_bytes(images.numpy())
    changed = images.flip(0).contiguous()
    path.write_bytes(gzip.compress(idx_bytes(changed.numpy())))
    os.utime(path, ns=(1, 1))  # another time, another key: the new content is read
    assert torch.equal(read_idx_images(path)[:, 0], changed)
    monkeypatch.setenv("CNNKIT_CACHE", "off")
    assert torch.equal(read_idx_images(path)[:, 0], changed)
    assert len(list((tmp_path / "cache" / "idx").iterdir())) == 2
