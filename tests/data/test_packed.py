"""Packed image folders: decoded once, read back without decoding (in memory or on demand from the file), noticed
when stale, refused when damaged, and training from a pack is training from the folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.data import load
from cnnkit.data.folder import decode_folder
from cnnkit.data.packed import load_packed

TABLE = """\
input 1x16x16
conv 6 3x3 padding=same
relu
maxpool 2
flatten
dense 3
"""


def _folder(root: Path, per_class: int = 12) -> Path:
    """A train/ + test/ tree of JPEG files, three classes told apart by where their bright bar is."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 3)):
        for label in range(3):
            for i in range(count):
                pixels = rng.integers(0, 60, (20, 24)).astype(np.uint8)
                pixels[:, 8 * label:8 * label + 6] = 220
                path = root / split / f"class{label}" / f"{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, quality=95)
    return root


def test_a_pack_holds_exactly_what_decoding_gives_and_reads_it_from_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _folder(tmp_path / "photos")
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(tmp_path / "p.cnnkit")]) == 0
    assert "train 36, test 12 images of 1x16x16, 3 classes" in capsys.readouterr().out
    decoded = decode_folder(root, (16, 16))
    for in_memory in (True, False):
        packed = load_packed(tmp_path / "p.cnnkit", in_memory=in_memory)
        for ours, theirs in ((packed.train, decoded.train), (packed.test, decoded.test)):
            assert ours is not None and theirs is not None
            assert torch.equal(ours.images, theirs.images) and torch.equal(ours.labels, theirs.labels)
            assert ours.class_names == theirs.class_names and ours.files == theirs.files
    manifest = json.loads((tmp_path / "p.cnnkit" / "manifest.json").read_text())
    source = json.loads((tmp_path / "p.cnnkit" / "source.json").read_text())
    assert len(source["files"]) == 48 and manifest["input_shape"] == [1, 16, 16]
    (tmp_path / "plain").mkdir()  # the pack's folder is made as any folder (others may read a shared pack)
    assert (tmp_path / "p.cnnkit").stat().st_mode == (tmp_path / "plain").stat().st_mode
    # on demand: the images are the file's bytes, read when touched (a change to the file shows through)
    mapped = load_packed(tmp_path / "p.cnnkit", in_memory=False).train.images
    with (tmp_path / "p.cnnkit" / "train.images").open("r+b") as file:
        file.seek(16 * 16 * 5)  # image 5's first pixel
        file.write(bytes([7]))
    assert int(mapped[5, 0, 0, 0]) == 7


def test_folder_data_is_packed_once_and_decoded_again_when_a_file_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "photos")
    first = load(f"folder:{root}", image_size=16)
    calls: list[Path] = []
    import cnnkit.data.folder as folder

    real = folder.pack_folder  # every decoding of a folder goes through it
    monkeypatch.setattr(folder, "pack_folder", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    second = load(f"folder:{root}", image_size=16)
    assert not calls and torch.equal(first.train.images, second.train.images)  # read from the pack, no decoding
    assert second.train.name == first.train.name and second.train.source == first.train.source
    load(f"folder:{root}", image_size=12)  # another size: another pack, decoded
    assert len(calls) == 1
    changed = root / "train" / "class0" / "0.jpg"
    Image.fromarray(np.full((20, 24), 255, dtype=np.uint8)).save(changed, quality=95)
    third = load(f"folder:{root}", image_size=16)
    assert len(calls) == 2  # the folder changed: decoded again, never the stale pack
    index = third.train.files.index(str(changed))
    assert int(third.train.images[index].min()) > 240 and not torch.equal(third.train.images, first.train.images)
    (root / "train" / "class1" / "new.jpg").write_bytes(changed.read_bytes())
    assert len(load(f"folder:{root}", image_size=16).train) == 37 and len(calls) == 3


def test_linked_folders_are_followed_and_their_changes_noticed(tmp_path: Path) -> None:
    """A class folder that is a link is read, and adding one (even to a folder already read) makes the pack stale; a
    cycle of links and a dangling link neither hang nor break the listing."""
    from cnnkit.data.packed import listing

    root = _folder(tmp_path / "photos") / "train"
    (root / "class0" / "loop").symlink_to(root)  # a cycle: root/class0/loop/class0/loop/...
    (root / "class1" / "ghost.jpg").symlink_to(tmp_path / "nowhere.jpg")
    files = listing(root)
    assert ["class0/loop/", 0, (root / "class0" / "loop").lstat().st_mtime_ns] in files
    assert ["class1/ghost.jpg", -1, 0] in files and len(files) < 200  # 36 images, the loop walked twice at most
    first = load(f"folder:{root}", image_size=16, skip_bad_images=True)
    assert len(first.skipped) == 1 and "ghost.jpg" in first.skipped[0]  # the dangling link: a file not read
    (root / "copy").symlink_to(root / "class0")  # a second link to a folder listed already: a new class
    second = load(f"folder:{root}", image_size=16, skip_bad_images=True)
    assert first.class_names == ("class0", "class1", "class2")
    assert second.class_names == ("class0", "class1", "class2", "copy") and len(second.train) == 48


def test_packs_of_an_older_format_are_dropped_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new pack format changes every cache key: the packs of the older one are removed when the folder is packed
    again, not left behind for ever; packs at other sizes, and other folders' packs, stay."""
    import shutil

    from cnnkit.data import packed

    root = _folder(tmp_path / "photos")
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    load(f"folder:{root}", image_size=16)
    first = packed.cache_path(root, packed.cache_key(root, (16, 16), None, False))
    assert first is not None and first.is_dir()
    for name, source in (("photos.0ld", root), ("photos.elsewhere", tmp_path / "other")):
        shutil.copytree(first, first.parent / name)
        manifest = json.loads((first.parent / name / "manifest.json").read_text())
        manifest.update(version=2, source=str(source.resolve()))
        (first.parent / name / "manifest.json").write_text(json.dumps(manifest))
        (first.parent / f"{name}.lock").write_text("")
    load(f"folder:{root}", image_size=12)  # packs again
    left = sorted(p.name for p in first.parent.iterdir())
    assert "photos.0ld" not in left and "photos.0ld.lock" not in left
    assert first.name in left and "photos.elsewhere" in left and len([n for n in left if not n.endswith(".lock")]) == 3


def test_training_from_a_pack_is_training_from_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _folder(tmp_path / "photos", per_class=30)
    table = tmp_path / "net.txt"
    table.write_text(TABLE)
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(tmp_path / "p.cnnkit")]) == 0
    results = {}
    for name, data in (("folder", f"folder:{root}"), ("packed", f"packed:{tmp_path / 'p.cnnkit'}")):
        out = tmp_path / name
        options = ["--image-size", "16"] if name == "folder" else []
        assert main(["train", "--model", str(table), "--data", data, *options, "--epochs", "2", "--batch-size", "16",
                     "--precision", "fp32", "--seed", "3", "--out", str(out), "--json", "--no-report"]) == 0
        capsys.readouterr()
        results[name] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for mine, theirs in zip(results["packed"], results["folder"], strict=True):
        for key in ("train_loss", "test_loss", "test_accuracy"):
            assert mine[key] == theirs[key], key
    assert results["packed"][-1]["test_accuracy"] > 0.6  # it learned: agreement of two broken runs proves nothing
    assert main(["evaluate", str(tmp_path / "packed"), "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == round(results["packed"][-1]["test_accuracy"], 4)


def test_bad_packs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _folder(tmp_path / "photos")
    pack = tmp_path / "p.cnnkit"
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(pack)]) == 0
    capsys.readouterr()
    assert main(["train", "--data", f"packed:{pack}", "--image-size", "32", "--epochs", "1",
                 "--out", str(tmp_path / "a")]) == 2
    assert "packed at 1x16x16" in capsys.readouterr().err
    with (pack / "train.images").open("r+b") as file:
        file.truncate(100)
    assert main(["train", "--data", f"packed:{pack}", "--epochs", "1", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "train.images: 100 bytes where the manifest says 36 images" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
    assert main(["train", "--data", f"packed:{tmp_path}", "--epochs", "1", "--out", str(tmp_path / "c")]) == 2
    assert "not a pack (no manifest.json)" in capsys.readouterr().err
    assert main(["data", "pack", "digits", "--out", str(tmp_path / "d")]) == 2
    assert "takes an image folder, folder:PATH (class folders, or images/ and masks/), or a COCO folder" in \
        capsys.readouterr().err
    assert main(["data", "pack", f"folder:{root}", "--out", str(root / "train")]) == 2  # never over other files
    assert "is not a pack" in capsys.readouterr().err and (root / "train" / "class0" / "0.jpg").exists()


def test_a_part_cut_from_a_mapped_pack_stays_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--val-split, --classes and --train-per-class cut a memory-mapped pack into unlinked files beside it, mapped
    in turn: the images are those the same cut of the pack in memory gives, and nothing stays behind."""
    import cnnkit.data.packed as packed
    from cnnkit.data.catalog import refine

    root = _folder(tmp_path / "photos", per_class=30)
    pack = tmp_path / "p.cnnkit"
    assert main(["data", "pack", f"folder:{root}", "--image-size", "16", "--out", str(pack)]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in pack.iterdir())
    monkeypatch.setattr(packed, "SUBSET_IN_MEMORY_BYTES", 0)  # every cut to disk, however small
    cut = {"val_split": 0.25, "seed": 4, "classes": ["class0", "class2"], "train_per_class": 10}
    mapped = refine(load_packed(pack, in_memory=False), "packed", **cut)  # type: ignore[arg-type]
    held = refine(load_packed(pack, in_memory=True), "packed", **cut)  # type: ignore[arg-type]
    assert len(mapped.train) == 20 and mapped.val is not None and len(mapped.val) == 16
    for ours, theirs in ((mapped.train, held.train), (mapped.val, held.val), (mapped.test, held.test)):
        assert ours is not None and theirs is not None
        assert torch.equal(ours.images, theirs.images) and torch.equal(ours.labels, theirs.labels)
        assert ours.files == theirs.files and ours.class_names == theirs.class_names == ("class0", "class2")
        assert ours.mapped == str(pack / ("test.images" if ours is mapped.test else "train.images"))
        assert not ours.images.untyped_storage().resizable()  # a file's pages, not an allocation
        assert theirs.mapped is None and theirs.images.untyped_storage().resizable()
    assert sorted(p.name for p in pack.iterdir()) == before  # the cut files have no name: gone with the process
    whole = load_packed(pack, in_memory=False).train
    backwards = torch.arange(-1, -len(whole) - 1, -1)  # negative indices, as images[index] reads them
    assert torch.equal(whole.subset(backwards).images, whole.images.flip(0))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # nothing can be written beside the pack: held in memory, and said so
        patch.setattr(packed.tempfile, "TemporaryFile", full)
        with pytest.warns(UserWarning, match=r"cannot write .* MB of images cut from it beside this pack "
                                             r"\(\[Errno 28\] No space left on device\); holding them in memory"):
            fallback = whole.subset(torch.arange(0, len(whole), 2))
    assert torch.equal(fallback.images, whole.images[::2])
    # the same run either way: a pack read on demand with --val-split trains as the folder decoded into memory
    table = tmp_path / "net.txt"
    table.write_text(TABLE)
    results = {}
    for name, data in (("folder", f"folder:{root}"), ("packed", f"packed:{pack}")):
        options = ["--image-size", "16"] if name == "folder" else []
        assert main(["train", "--model", str(table), "--data", data, *options, "--val-split", "0.25", "--epochs", "2",
                     "--batch-size", "16", "--precision", "fp32", "--seed", "3", "--out", str(tmp_path / name),
                     "--json", "--no-report", "--no-evaluate"]) == 0
        capsys.readouterr()
        results[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    for mine, theirs in zip(results["packed"], results["folder"], strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert mine[key] == theirs[key], key
    assert results["packed"][-1]["val_accuracy"] > 0.6


def test_processes_reading_one_folder_at_once_pack_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """torchrun's ranks load an uncached folder at the same moment: one packs it, the others wait for that pack
    and read it. (Two threads here: their separate opens of the lock file exclude each other as two processes'
    do.)"""
    import threading
    import time

    import cnnkit.data.folder as folder

    root = _folder(tmp_path / "photos")
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    packing = threading.Event()
    calls: list[Path] = []
    real = folder.pack_folder

    def slow(*args: object, **kwargs: object) -> Path:
        calls.append(Path(str(args[0])))
        packing.set()
        time.sleep(1.0)  # long enough for the other reader to arrive while this one packs
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(folder, "pack_folder", slow)
    results = {}

    def read(name: str) -> None:
        results[name] = load(f"folder:{root}", image_size=16)

    first = threading.Thread(target=read, args=("first",))
    first.start()
    assert packing.wait(30)
    second = threading.Thread(target=read, args=("second",))
    second.start()
    first.join(60)
    second.join(60)
    assert calls == [root]  # packed once
    assert torch.equal(results["first"].train.images, results["second"].train.images)
    assert results["second"].train.files == results["first"].train.files
    assert "another process is packing this folder into" in capsys.readouterr().err
