"""Large folders are decoded by DataLoader worker processes (cnnkit.data.decoding): the pack they make is the one
this process makes, byte for byte; a bad file is named as before; a worker that dies or hangs is a one-line error
that names the files in flight, not a hang, and leaves no pack behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnkit.data.decoding as decoding
from cnnkit.cli import main
from cnnkit.data.folder import decode_folder, pack_folder
from cnnkit.images import decode


def _photos(root: Path, per_class: int = 150) -> Path:
    """Three classes of JPEG, PNG and grey files of assorted sizes: more than one worker batch each."""
    rng = np.random.default_rng(0)
    for label in range(3):
        for i in range(per_class):
            h, w = int(rng.integers(12, 40)), int(rng.integers(12, 40))
            pixels = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
            pixels[..., label] = 255
            image = Image.fromarray(pixels)
            path = root / f"class{label}" / f"{i}.{('jpg', 'png')[i % 2]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            (image.convert("L") if i % 7 == 0 else image).save(path)
    return root


def test_worker_processes_pack_exactly_what_this_process_packs(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = _photos(tmp_path / "photos")
    (root / "class1" / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"not a jpeg" * 20)
    packs = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("CNNKIT_DECODE_WORKERS", workers)
        packs[workers] = pack_folder(root, (16, 16), None, True, tmp_path / f"pack{workers}")
    for name in ("train.images", "train.labels.npy"):
        assert (packs["0"] / name).read_bytes() == (packs["2"] / name).read_bytes(), name
    assert (packs["0"] / "manifest.json").read_text() == (packs["2"] / "manifest.json").read_text()
    decoded = decode_folder(root, (16, 16), skip_bad_images=True)  # with workers (still 2)
    broken = root / "class1" / "broken.jpg"
    assert decoded.skipped == (f"{broken}: cannot be decoded as an image (UnidentifiedImageError: cannot identify "
                               f"image file {str(broken)!r})",)
    files = decoded.train.files
    assert files is not None and len(files) == 450
    for index in (0, 77, 300, 449):  # each image is the one-file decode of its own file
        pixels, _, _ = decode(Path(files[index]), (16, 16))
        assert np.array_equal(decoded.train.images[index].permute(1, 2, 0).numpy(), pixels)
    with pytest.raises(ValueError, match=r"image file '.*class1/broken.jpg' .*--skip-bad-images"):
        decode_folder(root, (16, 16))


def test_a_worker_that_dies_or_hangs_is_named_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = _photos(tmp_path / "photos", per_class=100)
    monkeypatch.setenv("CNNKIT_DECODE_WORKERS", "2")
    victim = root / "class2" / "12.jpg"
    assert victim.is_file()
    real = decode

    def crash(path: Path, size: tuple[int, int], *args: object) -> object:
        if path == victim:  # a file that kills the decoder: the worker process dies
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, size)

    monkeypatch.setattr(decoding, "decode", crash)  # forked workers run the replaced function
    out = tmp_path / "p.cnnkit"
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "a worker process stopped" in error and "CNNKIT_DECODE_WORKERS=0" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1
    first, last = (Path(p) for p in error.split("from '")[1].split("'")[0:3:2])
    ordered = sorted(p for p in root.rglob("*.*"))
    assert ordered.index(first) <= ordered.index(victim) <= ordered.index(last)  # the files named hold the culprit
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["photos"]  # no pack, no leftovers

    def hang(path: Path, size: tuple[int, int], *args: object) -> object:
        if path == victim:
            time.sleep(3600)
        return real(path, size)

    monkeypatch.setattr(decoding, "decode", hang)
    monkeypatch.setattr(decoding, "TIMEOUT_S", 3)
    started = time.monotonic()
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(out)]) == 2
    assert time.monotonic() - started < 60 and "timed out" in capsys.readouterr().err
    assert not out.exists()


def test_a_worker_killed_while_a_batch_is_written_is_named_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """torch raises a dead worker's error wherever the main thread is: here while it writes a batch."""
    import cnnkit.data.packed as packed

    root = _photos(tmp_path / "photos", per_class=100)
    monkeypatch.setenv("CNNKIT_DECODE_WORKERS", "2")
    victim = root / "class2" / "12.jpg"
    real, real_add = decode, packed.SplitWriter.add

    def crash(path: Path, size: tuple[int, int], *args: object) -> object:
        if path == victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, size)

    def slow_add(self: packed.SplitWriter, *args: object) -> None:
        time.sleep(1.5)  # the worker dies meanwhile
        real_add(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(decoding, "decode", crash)
    monkeypatch.setattr(packed.SplitWriter, "add", slow_add)
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(tmp_path / "p")]) == 2
    error = capsys.readouterr().err
    assert "a worker process stopped" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_no_workers_inside_a_daemonic_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DataLoader's or a Pool's worker may not start processes: it decodes by itself."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    assert decoding.worker_count(100_000) == 0
    monkeypatch.setenv("CNNKIT_DECODE_WORKERS", "2")
    assert decoding.worker_count(10) == 0


def test_how_many_workers() -> None:
    assert decoding.worker_count(10) == 0  # a small folder: this process
    cores = len(os.sched_getaffinity(0))
    assert decoding.worker_count(100_000) == (min(cores, 8) if cores > 1 else 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCAL_WORLD_SIZE", "2")  # two torchrun processes on this machine: half the cores each
        assert decoding.worker_count(100_000) == (min(cores // 2, 8) if cores // 2 > 1 else 0)
        patch.delenv("LOCAL_WORLD_SIZE")
        patch.setenv("CNNKIT_DECODE_WORKERS", "3")
        assert decoding.worker_count(10) == 3
        patch.setenv("CNNKIT_DECODE_WORKERS", "two")
        with pytest.raises(ValueError, match=r"CNNKIT_DECODE_WORKERS must be a whole number .* Received: 'two'"):
            decoding.worker_count(10)
