"""Segmentation folders (images/ + masks/): pairing by name, resizing masks with their images, every bad case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data import draw_segmentation, load, save_pairs


def _pair(root: Path, name: str, size: tuple[int, int] = (30, 20), box: tuple[int, int, int, int] = (10, 5, 25, 15),
          cls: int = 1, image_suffix: str = ".png") -> None:
    """A dark image with a bright rectangle ``box`` = (x0, y0, x1, y1) and the mask saying ``cls`` there."""
    w, h = size
    pixels = np.full((h, w, 3), 20, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 230
    mask[y0:y1, x0:x1] = cls
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(root / "images" / f"{name}{image_suffix}")
    Image.fromarray(mask).save(root / "masks" / f"{name}.png")


def test_a_saved_dataset_loads_back_exactly(tmp_path: Path) -> None:
    scenes = draw_segmentation(12, seed=4)
    save_pairs(scenes, tmp_path / "scenes")
    splits = load(f"folder:{tmp_path / 'scenes'}", image_size=32)
    train = splits.train
    assert train.kind == "segmentation" and train.class_names == scenes.class_names
    assert torch.equal(train.images, scenes.images) and torch.equal(train.segmentation, scenes.segmentation)
    assert torch.equal(train.labels, scenes.labels)  # the largest shape of each scene
    assert splits.test is None
    carved = load(f"folder:{tmp_path / 'scenes'}", image_size=32, val_split=0.25, seed=1)
    assert carved.val is not None and carved.val.segmentation is not None and len(carved.val) + len(carved.train) == 12


def test_masks_are_resized_with_their_images(tmp_path: Path) -> None:
    for i in range(3):
        _pair(tmp_path, f"{i}", cls=1 + i % 2, image_suffix=".jpg" if i == 0 else ".png")  # a jpg pairs with a png mask
    splits = load(f"folder:{tmp_path}", image_size=16)
    images, masks = splits.train.images.float().mean(1), splits.train.segmentation
    assert masks.shape == (3, 16, 16) and splits.class_names == ("background", "class 1", "class 2")
    assert set(masks.unique().tolist()) == {0, 1, 2}  # nearest neighbour: no in-between class ids
    assert splits.train.labels.tolist() == [1, 2, 1]
    inside, outside = images[masks > 0], images[masks == 0]
    assert inside.min() > 150 and outside.max() < 110  # the rectangle and its class cover the same pixels


def test_given_splits_and_class_names(tmp_path: Path) -> None:
    for split, count in (("train", 3), ("test", 2)):
        for i in range(count):
            _pair(tmp_path / split, f"{split}{i}", cls=2)
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\n")
    splits = load(f"folder:{tmp_path}", image_size=8)
    assert splits.class_names == ("sky", "road", "car") and splits.test_official
    assert len(splits.train) == 3 and splits.test is not None and len(splits.test) == 2
    (tmp_path / "classes.txt").write_text("sky\nroad\n")
    with pytest.raises(ValueError, match=r"classes.txt' names 2 classes \(ids 0-1\) but a mask holds class id 2"):
        load(f"folder:{tmp_path}")


@pytest.mark.parametrize("workers", ["0", "2"])  # read in this process, and in DataLoader worker processes
def test_missing_orphan_and_mis_sized_masks_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          workers: str) -> None:
    monkeypatch.setenv("CNNKIT_DECODE_WORKERS", workers)
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    (tmp_path / "masks" / "b.png").unlink()
    with pytest.raises(ValueError, match=r"image '.*images/b.png' has no mask: expected .*masks/b.png"):
        load(f"folder:{tmp_path}")
    _pair(tmp_path, "b")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "masks" / "c.png")
    with pytest.raises(ValueError, match=r"mask '.*masks/c.png' has no image of the same name"):
        load(f"folder:{tmp_path}")
    (tmp_path / "masks" / "c.png").unlink()
    Image.fromarray(np.zeros((21, 30), np.uint8)).save(tmp_path / "masks" / "b.png")
    with pytest.raises(ValueError, match=r"mask '.*masks/b.png' is 30x21 pixels but its image '.*images/b.png' is "
                                         r"30x20 \(width x height\)"):
        load(f"folder:{tmp_path}", skip_bad_images=True)  # a mis-sized mask is never skipped: it is a wrong pair
    Image.fromarray(np.full((20, 30), 300, np.uint16)).save(tmp_path / "masks" / "b.png")  # 16-bit class ids
    with pytest.raises(ValueError, match=r"mask '.*masks/b.png' holds class id 300; class ids must be 0-255"):
        load(f"folder:{tmp_path}", skip_bad_images=True)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_colour_and_broken_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str) -> None:
    monkeypatch.setenv("CNNKIT_DECODE_WORKERS", workers)
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[..., 0] = 1
    Image.fromarray(colour).save(tmp_path / "masks" / "b.png")
    with pytest.raises(ValueError, match=r"mask file '.*masks/b.png' is a colour \(RGB\) image; a mask must be one "
                                         r"channel.*skip_bad_images=True"):
        load(f"folder:{tmp_path}")
    (tmp_path / "masks" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match=r"mask file '.*masks/b.png' cannot be decoded"):
        load(f"folder:{tmp_path}")
    splits = load(f"folder:{tmp_path}", skip_bad_images=True)
    assert len(splits.train) == 1 and len(splits.skipped) == 1 and "masks/b.png" in splits.skipped[0]
    grey_rgb = np.repeat(np.asarray(Image.open(tmp_path / "masks" / "a.png"))[..., None], 3, axis=2)
    Image.fromarray(grey_rgb).save(tmp_path / "masks" / "b.png")  # RGB with equal channels: still class ids
    assert load(f"folder:{tmp_path}").train.segmentation.unique().tolist() == [0, 1]  # type: ignore[union-attr]
