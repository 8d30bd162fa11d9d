"""Synthetic shapes: determinism by seed, masks and boxes agreeing with each other and with the pixels."""

from __future__ import annotations

import pytest
import torch

from cnnkit.data import SHAPE_NAMES, draw_segmentation, draw_shapes, load


def test_same_seed_same_bytes_other_seed_differs() -> None:
    a, b, c = draw_shapes(120, seed=3), draw_shapes(120, seed=3), draw_shapes(120, seed=4)
    for field in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert not torch.equal(a.images, c.images) and not torch.equal(a.masks, c.masks)


def test_classes_balanced_and_sizes_configurable() -> None:
    ds = draw_shapes(60, size=(40, 24), seed=0)
    assert ds.images.shape == (60, 3, 40, 24) and ds.masks is not None and ds.masks.shape == (60, 40, 24)
    assert ds.class_counts() == [10] * len(SHAPE_NAMES) and ds.class_names == SHAPE_NAMES


def test_masks_consistent_with_boxes() -> None:
    ds = draw_shapes(300, seed=1)
    assert ds.masks is not None and ds.boxes is not None
    for mask, (x0, y0, x1, y1) in zip(ds.masks, ds.boxes.long().tolist(), strict=True):
        assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32
        inside = torch.zeros_like(mask)
        inside[y0:y1, x0:x1] = True
        assert not (mask & ~inside).any()  # nothing outside the box
        # the box is tight: the mask touches all four sides
        assert mask[y0].any() and mask[y1 - 1].any() and mask[:, x0].any() and mask[:, x1 - 1].any()


def test_masks_match_the_pixels() -> None:
    ds = draw_shapes(200, seed=2)
    assert ds.masks is not None
    pixels = ds.images.float()
    for image, mask in zip(pixels, ds.masks, strict=True):
        shape_colour, background = image[:, mask].mean(1), image[:, ~mask].mean(1)
        # foreground and background differ by at least 0.3 * 255 per channel, minus noise
        assert ((shape_colour - background).abs() > 50).all()


def test_segmentation_maps() -> None:
    ds = draw_segmentation(200, seed=0)
    assert ds.kind == "segmentation" and ds.class_names == ("background", *SHAPE_NAMES)
    seg = ds.segmentation
    assert seg is not None and seg.shape == (200, 32, 32) and seg.dtype == torch.uint8
    assert int(seg.max()) == len(SHAPE_NAMES) and (seg == 0).float().mean() > 0.5
    for labels, image_seg in zip(ds.labels.tolist(), seg, strict=True):
        areas = torch.bincount(image_seg.flatten().long(), minlength=len(SHAPE_NAMES) + 1)
        assert labels >= 1 and areas[labels] == areas[1:].max()  # the label is the largest shape class
    assert torch.equal(ds.targets, seg)
    assert torch.equal(draw_segmentation(50, seed=5).images, draw_segmentation(50, seed=5).images)


def test_load_shapes_splits_and_options() -> None:
    splits = load("shapes", num_samples=120, image_size=20, grayscale=True, seed=7)
    assert splits.test is not None and len(splits.train) + len(splits.test) == 120
    assert splits.input_shape == (1, 20, 20) and splits.train.masks is not None
    assert splits.test.class_counts() == [4] * len(SHAPE_NAMES)
    seg = load("shapes-seg", num_samples=60)
    assert seg.train.segmentation is not None and seg.num_classes == len(SHAPE_NAMES) + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_samples": 5}, r"`num_samples` must be an int >= 12"), ({"num_samples": 20, "size": (8, 8)}, r"at least 16 pixels")],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_shapes(**kwargs)
