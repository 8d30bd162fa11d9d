"""Segmentation (images/ + masks/) and COCO folders pack as class folders do: the pack holds exactly the values
drawn before they were written as files (images, class maps, objects), worker processes pack what this process
packs, the cache is used and noticed stale, cuts of a mapped pack stay on disk, and a run trains the same from the
pack as from the folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit.data.coco as coco
import cnnkit.data.packed as packed
import cnnkit.data.pairs as pairs
from cnnkit.cli import main
from cnnkit.data import draw_segmentation, load, save_pairs
from cnnkit.data.catalog import refine
from cnnkit.data.coco import save_coco
from cnnkit.data.dataset import ImageDataset
from cnnkit.data.packed import load_packed
from cnnkit.tasks import make_task


def _scenes(root: Path, count: int = 40, held: int = 10) -> tuple[ImageDataset, ImageDataset]:
    """``count`` shapes-seg scenes of 16x16 written as a segmentation folder, the last ``held`` as its test split."""
    scenes = draw_segmentation(count, (16, 16), seed=2)
    train, test = scenes.subset(torch.arange(count - held)), scenes.subset(torch.arange(count - held, count))
    save_pairs(train, root / "train")
    save_pairs(test, root / "test")
    return train, test


def _packings(monkeypatch: pytest.MonkeyPatch, module: object, packer: str) -> list[Path]:
    """The folders that ``module.packer`` (a layout's pack function: every decoding goes through it) is called
    for from now on, in order."""
    calls: list[Path] = []
    real = getattr(module, packer)
    monkeypatch.setattr(module, packer, lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    return calls


def _same(ours: ImageDataset, theirs: ImageDataset) -> None:
    """Every per-image tensor of ``ours`` equals ``theirs``' (objects up to ``ours``' slot count)."""
    assert torch.equal(ours.images, theirs.images) and torch.equal(ours.labels, theirs.labels)
    assert ours.class_names == theirs.class_names
    for field in ("segmentation", "object_classes", "object_boxes", "object_masks"):
        mine, right = getattr(ours, field), getattr(theirs, field)
        assert (mine is None) == (right is None), field
        if mine is not None:
            assert torch.equal(mine, right[:, :mine.shape[1]] if field.startswith("object") else right), field
    if theirs.object_classes is not None and ours.object_classes is not None:  # no object left out of the slots
        assert bool((theirs.object_classes[:, ours.object_classes.shape[1]:] == -1).all())


def test_a_segmentation_folder_packs_its_class_maps_beside_its_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = _scenes(tmp_path / "scenes")
    outs = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("CNNKIT_DECODE_WORKERS", workers)
        outs[workers] = tmp_path / f"p{workers}.cnnkit"
        assert main(["data", "pack", f"folder:{tmp_path / 'scenes'}", "--image-size", "16",
                     "--out", str(outs[workers])]) == 0
        assert f"train 30, test 10 images of 3x16x16, {len(train.class_names)} classes" in capsys.readouterr().out
    for name in ("train.images", "train.segmentation", "train.labels.npy", "test.segmentation", "manifest.json"):
        assert (outs["0"] / name).read_bytes() == (outs["2"] / name).read_bytes(), name  # workers pack the same
    for in_memory in (True, False):
        splits = load_packed(outs["0"], in_memory=in_memory)
        assert splits.test is not None and splits.test_official and splits.train.kind == "segmentation"
        _same(splits.train, train)  # the values drawn, back from PNG files through the pack
        _same(splits.test, test)
    mapped = load_packed(outs["0"], in_memory=False).train.segmentation
    assert mapped is not None
    with (outs["0"] / "train.segmentation").open("r+b") as file:  # mapped: the file's bytes, read when touched
        file.seek(16 * 16 * 3 + 5)
        file.write(bytes([9]))
    assert int(mapped[3, 0, 5]) == 9
    # at another size: each class map sampled at the nearest pixel centres (here every other pixel, from the 2nd)
    assert main(["data", "pack", f"folder:{tmp_path / 'scenes'}", "--image-size", "8", "--out", str(tmp_path / "s")]) == 0
    assert torch.equal(load_packed(tmp_path / "s").train.segmentation,  # type: ignore[arg-type]
                       train.segmentation[:, 1::2, 1::2])  # type: ignore[index]
    # a mask that does not fit its image: one error, no pack, nothing left behind
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "scenes" / "test" / "masks" / "00003.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["data", "pack", f"folder:{tmp_path / 'scenes'}", "--out", str(tmp_path / "bad")]) == 2
    assert "00003.png' is 5x5 pixels but its image" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    Image.fromarray(test.segmentation[3].numpy()).save(tmp_path / "scenes" / "test" / "masks" / "00003.png")  # type: ignore[index]
    # the largest class id fixes the names where no classes.txt says them
    (tmp_path / "scenes" / "train" / "classes.txt").unlink()
    largest = max(int(train.segmentation.max()), int(test.segmentation.max()))  # type: ignore[union-attr]
    assert load(f"folder:{tmp_path / 'scenes'}", image_size=16).class_names == \
        ("background", *(f"class {i}" for i in range(1, largest + 1)))


def test_a_segmentation_folder_is_cached_noticed_stale_and_cut_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "scenes"
    scenes = draw_segmentation(40, (16, 16), seed=5)
    save_pairs(scenes, root)  # one set: --val-split carves from it
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    calls = _packings(monkeypatch, pairs, "pack_pairs")
    first = load(f"folder:{root}", image_size=16)
    second = load(f"folder:{root}", image_size=16)
    assert calls == [root] and second.train.mapped is None  # read from the pack, no decoding (small: in memory)
    _same(second.train, scenes)
    mask = root / "masks" / "00007.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask)  # image 7 now shows nothing
    third = load(f"folder:{root}", image_size=16)
    assert len(calls) == 2 and int(third.train.segmentation[7].max()) == 0  # type: ignore[index]
    assert int(third.train.labels[7]) == 0 and not torch.equal(third.train.labels, first.train.labels)
    # a cut of the mapped pack: class maps and images in unlinked files beside it, equal to the cut in memory
    cached = packed.cache_path(root, packed.cache_key(root, (16, 16), None, False, "pairs"))
    assert cached is not None and (cached / "train.segmentation").is_file()
    monkeypatch.setattr(packed, "SUBSET_IN_MEMORY_BYTES", 0)
    cut = {"val_split": 0.25, "seed": 1}
    mapped = refine(load_packed(cached, in_memory=False), "packed", **cut)  # type: ignore[arg-type]
    held = refine(load_packed(cached, in_memory=True), "packed", **cut)  # type: ignore[arg-type]
    for ours, theirs in ((mapped.train, held.train), (mapped.val, held.val)):
        assert ours is not None and theirs is not None and ours.segmentation is not None
        _same(ours, theirs)
        assert not ours.segmentation.untyped_storage().resizable() and ours.files == theirs.files
    assert mapped.val is not None and len(mapped.val) == 10


def test_training_from_a_packed_segmentation_folder_is_training_from_the_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _scenes(tmp_path / "scenes", count=160, held=32)
    assert main(["data", "pack", f"folder:{tmp_path / 'scenes'}", "--image-size", "16",
                 "--out", str(tmp_path / "p.cnnkit")]) == 0
    monkeypatch.setenv("CNNKIT_CACHE", "off")  # the folder decoded into memory, not read from any pack
    results = {}
    for name, data in (("folder", f"folder:{tmp_path / 'scenes'}"), ("packed", f"packed:{tmp_path / 'p.cnnkit'}")):
        options = ["--image-size", "16"] if name == "folder" else []
        assert main(["train", "--task", "segment", "--data", data, *options, "--model-options", "width=8",
                     "--val-split", "0.25", "--epochs", "2", "--lr", "0.01", "--precision", "fp32", "--seed", "3",
                     "--out", str(tmp_path / name), "--json", "--no-report", "--no-evaluate"]) == 0
        capsys.readouterr()
        results[name] = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    for mine, theirs in zip(results["packed"], results["folder"], strict=True):
        for key in ("train_loss", "val_loss", "val_mean_iou", "val_pixel_accuracy"):
            assert mine[key] == theirs[key], key
    assert results["packed"][-1]["train_loss"] < results["packed"][0]["train_loss"]  # it learned


def test_a_coco_folder_packs_its_objects_beside_its_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    drawn = load("shapes-det", num_samples=40, image_size=32)
    save_coco(drawn, tmp_path / "coco")
    outs = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("CNNKIT_DECODE_WORKERS", workers)
        outs[workers] = tmp_path / f"p{workers}.cnnkit"
        assert main(["data", "pack", f"coco:{tmp_path / 'coco'}", "--out", str(outs[workers])]) == 0
        assert "images of 3x32x32" in capsys.readouterr().out
    for name in ("train.images", "train.object_masks", "train.object_boxes", "test.object_classes", "manifest.json"):
        assert (outs["0"] / name).read_bytes() == (outs["2"] / name).read_bytes(), name
    for in_memory in (True, False):
        splits = load_packed(outs["0"], in_memory=in_memory)
        assert splits.test is not None and drawn.test is not None and splits.train.kind == "detection"
        _same(splits.train, drawn.train)
        _same(splits.test, drawn.test)
        assert splits.train.fit == "stretch"  # as predict reads a COCO-trained run's files
    monkeypatch.setattr(packed, "SUBSET_IN_MEMORY_BYTES", 0)  # a cut's object masks stay on disk, as its images
    mapped = refine(load_packed(outs["0"], in_memory=False), "packed", val_split=0.25, seed=1)
    held = refine(load_packed(outs["0"], in_memory=True), "packed", val_split=0.25, seed=1)
    for ours, theirs in ((mapped.train, held.train), (mapped.val, held.val)):
        assert ours is not None and theirs is not None and ours.object_masks is not None
        _same(ours, theirs)
        assert not ours.object_masks.untyped_storage().resizable()
    # --task instance's targets (each object's mask holding its class + 1) are made on disk beside a mapped pack
    instance = make_task("instance")
    whole = load_packed(outs["0"], in_memory=False).train
    targets = instance.targets(whole)
    assert not targets.untyped_storage().resizable()
    assert torch.equal(targets, instance.targets(drawn.train)[:, :targets.shape[1]])
    assert main(["data", "pack", f"coco:{tmp_path / 'coco'}", "--image-size", "16", "--out", str(tmp_path / "s")]) == 0
    small = load_packed(tmp_path / "s")
    assert torch.allclose(small.train.object_boxes * 2, drawn.train.object_boxes[:, :small.train.object_boxes.shape[1]])  # type: ignore[operator, index]


def test_a_single_coco_set_is_cached_split_by_the_seed_and_skips_bad_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    drawn = load("shapes-det", num_samples=30, image_size=32).train
    root = save_coco(drawn, tmp_path / "coco")  # one set: held out 80/20 by the seed
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    calls = _packings(monkeypatch, coco, "pack_coco")
    first = load(f"coco:{root}", seed=3)
    again = load(f"coco:{root}", seed=3)
    other = load(f"coco:{root}", seed=4)
    assert calls == [root]  # one decoding, whatever the seed
    assert first.test is not None and again.test is not None and other.test is not None
    assert again.test.files == first.test.files != other.test.files and len(first.test) == 6
    for part in (first.train, first.test):
        assert part.files is not None
        rows = torch.tensor([int(Path(f).stem) for f in part.files])  # save_coco names image i 00000i.png
        _same(part, drawn.subset(rows))
    monkeypatch.setenv("CNNKIT_CACHE", "off")
    assert load(f"coco:{root}", seed=3).test.files == first.test.files  # type: ignore[union-attr]
    assert main(["data", "pack", f"coco:{root}", "--out", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert load(f"packed:{tmp_path / 'p'}", seed=3).test.files == first.test.files  # type: ignore[union-attr]
    # annotations edited: the pack is stale, decoded again
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    made = len(calls)
    values = json.loads((root / "annotations.json").read_text())
    values["categories"][0]["name"] = "renamed"
    (root / "annotations.json").write_text(json.dumps(values))
    assert load(f"coco:{root}", seed=3).class_names[0] == "renamed" and len(calls) == made + 1
    (root / "images" / "000004.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"image file '.*000004.png' cannot be decoded as an image .*\(image id 5 of "
                                         r".*annotations.json\); or pass skip_bad_images=True"):
        load(f"coco:{root}")
    skipping = load(f"coco:{root}", skip_bad_images=True)
    assert len(skipping.train) + len(skipping.test) == len(drawn) - 1 and "000004.png: cannot be decoded" in skipping.skipped[0]  # type: ignore[arg-type]


def test_given_coco_splits_are_kept_as_given(tmp_path: Path) -> None:
    """train/ alone is not a single set: nothing is held out of it; a split naming a category otherwise than
    train/ is refused."""
    import shutil

    drawn = load("shapes-det", num_samples=30, image_size=32)
    save_coco(drawn, tmp_path / "coco")
    test_annotations = tmp_path / "coco" / "test" / "annotations.json"
    values = json.loads(test_annotations.read_text())
    values["categories"][1]["name"] = "other"
    test_annotations.write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"test/annotations.json: its categories .*'other'.* differ from the training "
                                         r"split's"):
        load(f"coco:{tmp_path / 'coco'}")
    shutil.rmtree(tmp_path / "coco" / "test")
    alone = load(f"coco:{tmp_path / 'coco'}")
    assert alone.test is None and alone.val is None and not alone.test_official
    _same(alone.train, drawn.train)


def test_a_large_jpeg_is_measured_at_its_own_size(tmp_path: Path) -> None:
    """A JPEG much larger than the size asked is decoded at a reduced scale; its mask and its annotation are still
    measured against the file's own size, and still cover the same pixels."""
    pixels = np.full((300, 400, 3), 20, np.uint8)
    pixels[60:180, 120:280] = 230
    mask = np.zeros((300, 400), np.uint8)
    mask[60:180, 120:280] = 1
    for folder in ("images", "masks"):
        (tmp_path / "pairs" / folder).mkdir(parents=True)
    Image.fromarray(pixels).save(tmp_path / "pairs" / "images" / "a.jpg", quality=95)
    Image.fromarray(mask).save(tmp_path / "pairs" / "masks" / "a.png")
    segmented = load(f"folder:{tmp_path / 'pairs'}", image_size=20).train  # centre 300x300: 10 x 8 cells of 15
    assert segmented.segmentation is not None
    inside, outside = segmented.images[0].float().mean(0)[segmented.segmentation[0] > 0], \
        segmented.images[0].float().mean(0)[segmented.segmentation[0] == 0]
    assert segmented.segmentation[0].sum() == 10 * 8 and inside.min() > 150 and outside.max() < 110
    (tmp_path / "coco" / "images").mkdir(parents=True)
    Image.fromarray(pixels).save(tmp_path / "coco" / "images" / "a.jpg", quality=95)
    (tmp_path / "coco" / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 400, "height": 300}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [120, 60, 160, 120], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "box"}]}))
    boxes = load(f"coco:{tmp_path / 'coco'}", image_size=30).train
    assert boxes.object_boxes is not None and boxes.object_boxes[0, 0].tolist() == [9.0, 6.0, 21.0, 18.0]
    # the photo stored on its side, 300 wide and 400 high, with EXIF orientation 6 (turn it a quarter clockwise to
    # show it): upright it is the 400 x 300 image again, and so is its mask
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(pixels).copy()).save(tmp_path / "pairs" / "images" / "a.jpg", quality=95, exif=exif)
    turned = load(f"folder:{tmp_path / 'pairs'}", image_size=20).train
    assert turned.segmentation is not None and torch.equal(turned.segmentation, segmented.segmentation)
    grey = turned.images[0].float().mean(0)
    assert grey[turned.segmentation[0] > 0].min() > 150 and grey[turned.segmentation[0] == 0].max() < 110
