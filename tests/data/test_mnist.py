"""Fashion-MNIST / MNIST: where the files are looked for, the download path (network mocked), the real data."""

from __future__ import annotations

import gzip
import hashlib
import io
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from data_helpers import MNIST_STEMS, fake_mnist, idx_bytes, write_idx

from cnnkit.data import load, mnist
from cnnkit.data.mnist import IDX_DATASETS

REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No system copy, no $CNNKIT_DATA, an empty cache: only what a test puts there is found."""
    monkeypatch.setattr(mnist, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_data_dir_with_gz_files(isolated: Path) -> None:
    arrays = fake_mnist(isolated / "mine" / "fashion-mnist", n_train=20, n_test=10)
    splits = load("fashion-mnist", data_dir=isolated / "mine")
    assert (len(splits.train), len(splits.test or [])) == (20, 10)
    assert splits.train.images.shape == (20, 1, 28, 28)
    assert torch.equal(splits.train.images[:, 0], torch.from_numpy(arrays[MNIST_STEMS[0]]))
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"
    assert splits.test_official and splits.eval_split == "test"
    assert splits.train.source == str(isolated / "mine" / "fashion-mnist")


def test_flat_data_dir_with_raw_files(isolated: Path) -> None:
    fake_mnist(isolated / "flat", gz=False)
    assert load("mnist", data_dir=isolated / "flat").class_names == tuple("0123456789")


def test_search_order_data_dir_then_env_then_system(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mnist(isolated / "system" / "fashion-mnist", n_train=30)
    assert len(load("fashion-mnist").train) == 30
    fake_mnist(isolated / "env" / "fashion-mnist", n_train=40)
    monkeypatch.setenv("CNNKIT_DATA", str(isolated / "env"))
    assert len(load("fashion-mnist").train) == 40
    fake_mnist(isolated / "arg", n_train=50)
    assert len(load("fashion-mnist", data_dir=isolated / "arg").train) == 50


def test_earlier_download_in_cache_is_found(isolated: Path) -> None:
    fake_mnist(isolated / "cache" / "datasets" / "fashion-mnist", n_train=60)
    assert len(load("fashion-mnist").train) == 60


def test_nothing_found_says_where_and_how(isolated: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load("fashion-mnist")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir DIR" in message
    assert str(isolated / "system" / "fashion-mnist") in message and str(isolated / "cache") in message
    # the download it suggests is one that exists: a Python call (the command line has no --download)
    assert "--download" not in message and "cnnkit.data.load('fashion-mnist', download=True)" in message


def test_missing_data_dir_is_an_error(isolated: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"the data directory '.*nope' does not exist"):
        load("fashion-mnist", data_dir=isolated / "nope")


def test_partial_directory_names_missing_files(isolated: Path) -> None:
    fake_mnist(isolated / "part")
    (isolated / "part" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"holds only part of fashion-mnist: t10k-labels-idx1-ubyte \(.gz or raw\) missing"):
        load("fashion-mnist", data_dir=isolated / "part")


def test_label_out_of_range_in_dataset_file(isolated: Path) -> None:
    fake_mnist(isolated / "bad")
    write_idx(isolated / "bad" / "t10k-labels-idx1-ubyte.gz", torch.tensor([0, 1, 2, 3, 11, 5, 6, 7, 8, 9]).byte().numpy(), gz=True)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz': label 11 at index 4 is out of range \[0, 10\)"):
        load("fashion-mnist", data_dir=isolated / "bad")


def test_download_without_network_fails_cleanly(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float) -> io.BytesIO:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match=r"The download failed: could not download train-images-idx3-ubyte.gz.*network is unreachable"):
        load("fashion-mnist", download=True)
    cache = isolated / "cache" / "datasets" / "fashion-mnist"
    assert list(cache.iterdir()) == []  # no partial file left behind


def _serve(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> list[str]:
    requested: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        requested.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested


def _gz_files(n: int = 12) -> dict[str, bytes]:
    images, labels = torch.zeros(n, 28, 28, dtype=torch.uint8).numpy(), (torch.arange(n) % 10).byte().numpy()
    return {
        f"{MNIST_STEMS[0]}.gz": gzip.compress(idx_bytes(images)),
        f"{MNIST_STEMS[1]}.gz": gzip.compress(idx_bytes(labels)),
        f"{MNIST_STEMS[2]}.gz": gzip.compress(idx_bytes(images[:10])),
        f"{MNIST_STEMS[3]}.gz": gzip.compress(idx_bytes(labels[:10])),
    }


def test_download_verifies_checksums_and_writes_into_cache(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _gz_files()
    md5 = tuple(hashlib.md5(files[f"{stem}.gz"]).hexdigest() for stem in MNIST_STEMS)
    monkeypatch.setitem(IDX_DATASETS, "mnist", replace(IDX_DATASETS["mnist"], md5=md5))
    requested = _serve(monkeypatch, files)
    splits = load("mnist", download=True)
    assert len(splits.train) == 12 and len(requested) == 4
    cache = isolated / "cache" / "datasets" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)
    load("mnist")  # found in the cache now, no download
    assert len(requested) == 4


def test_checksum_mismatch_tries_next_mirror_then_fails(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requested = _serve(monkeypatch, _gz_files())  # the published MD5s do not match these files
    with pytest.raises(FileNotFoundError, match=r"md5 checksum mismatch"):
        load("mnist", download=True)
    assert len(requested) == len(IDX_DATASETS["mnist"].mirrors)
    assert list((isolated / "cache" / "datasets" / "mnist").iterdir()) == []


@pytest.mark.skipif(not REAL.is_dir(), reason="Fashion-MNIST not installed at /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    start = time.perf_counter()
    splits = load("fashion-mnist")
    seconds = time.perf_counter() - start
    assert splits.train.images.shape == (60000, 1, 28, 28) and splits.train.images.dtype == torch.uint8
    assert splits.test is not None and splits.test.images.shape == (10000, 1, 28, 28)
    assert splits.train.class_counts() == [6000] * 10
    assert splits.test.class_counts() == [1000] * 10
    assert splits.num_classes == 10 and splits.test_official
    assert 60 < splits.train.images.float().mean() < 90  # Fashion-MNIST's mean pixel is about 72.9
    assert seconds < 2.0, f"loading Fashion-MNIST took {seconds:.2f} s"
