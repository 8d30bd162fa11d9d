"""shapes-loc and shapes-det scenes, boxes that move with augmentation, and COCO files written and read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data import BatchTransform, load
from cnnkit.data.coco import save_coco
from cnnkit.data.objects import MIN_VISIBLE, draw_objects


@pytest.fixture(scope="module")
def scenes() -> torch.utils.data.Dataset:  # type: ignore[type-arg]
    return draw_objects(60, (48, 48), seed=3)


def _tight(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def test_every_object_has_its_visible_mask_and_the_box_of_it(scenes) -> None:  # type: ignore[no-untyped-def]
    classes, boxes, masks = scenes.object_classes.numpy(), scenes.object_boxes.numpy(), scenes.object_masks.numpy()
    counts = (classes >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() <= 6 and counts.mean() > 2
    for i in range(len(scenes)):
        real = classes[i] >= 0
        assert list(real) == sorted(real, reverse=True)  # objects first, then the empty slots
        assert not masks[i][~real].any() and not boxes[i][~real].any()
        assert (masks[i][real].sum(0) <= 1).all()  # a pixel shows at most one object
        for j in np.nonzero(real)[0]:
            assert boxes[i, j].tolist() == _tight(masks[i, j])
    assert scenes.labels.tolist() == [int(classes[i][masks[i].sum((1, 2)).argmax()]) for i in range(len(scenes))]


def test_the_same_seed_draws_the_same_bytes_and_another_does_not() -> None:
    a, b, c = draw_objects(24, (32, 32), seed=1), draw_objects(24, (32, 32), seed=1), draw_objects(24, (32, 32), seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.object_boxes, b.object_boxes)  # type: ignore[arg-type]
    assert not torch.equal(a.images, c.images)


def test_shapes_loc_has_one_box_per_image_and_no_occlusion() -> None:
    splits = load("shapes-loc", num_samples=60, image_size=32)
    train = splits.train
    assert train.boxes is not None and train.masks is not None and train.input_shape == (3, 32, 32)
    assert all(_tight(train.masks[i].numpy()) == train.boxes[i].tolist() for i in range(len(train)))
    assert MIN_VISIBLE > 0 and train.object_classes is not None and bool((train.object_classes[:, 0] >= 0).all())


def test_boxes_move_with_crops_and_flips_as_their_masks_do(scenes) -> None:  # type: ignore[no-untyped-def]
    transform = BatchTransform(crop_padding=6, hflip=0.5)
    masks = scenes.object_masks
    moved_x, moved_boxes, moved_masks = transform.apply_boxes(scenes.images, scenes.object_boxes, masks,
                                                             torch.Generator().manual_seed(0))
    x, _ = transform.apply(scenes.images, None, torch.Generator().manual_seed(0))
    assert torch.equal(x, moved_x)  # the same draws as without boxes
    assert moved_masks is not None
    for i in range(len(scenes)):
        for j in range(masks.shape[1]):
            if int(scenes.object_classes[i, j]) < 0 or not moved_masks[i, j].any():
                continue
            # a box that was cut by the crop is the cut box, which may be larger than what is left of the shape
            expected = _tight(moved_masks[i, j].numpy())
            got = moved_boxes[i, j].tolist()
            assert got[0] <= expected[0] and got[1] <= expected[1] and got[2] >= expected[2] and got[3] >= expected[3]
            if scenes.object_masks[i, j].sum() == moved_masks[i, j].sum():  # nothing cut: exact
                assert got == expected


def test_save_coco_writes_what_pycocotools_reads_and_load_gives_it_back(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    splits = load("shapes-det", num_samples=40, image_size=32)
    save_coco(splits, tmp_path / "coco")
    coco = COCO(str(tmp_path / "coco" / "train" / "annotations.json"))
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    train = splits.train
    assert train.object_masks is not None and train.object_classes is not None
    for k, annotation in enumerate(first):
        assert np.array_equal(coco.annToMask(annotation).astype(bool), train.object_masks[0, k].numpy())
        assert annotation["area"] == float(mask_utils.area(coco.annToRLE(annotation)))
        assert annotation["category_id"] - 1 == int(train.object_classes[0, k])
    back = load(f"coco:{tmp_path / 'coco'}")
    assert back.test is not None and splits.test is not None and back.test_official
    for mine, theirs in ((back.train, splits.train), (back.test, splits.test)):
        m = mine.object_classes.shape[1]  # type: ignore[union-attr]
        assert torch.equal(mine.images, theirs.images)
        assert torch.equal(mine.object_classes, theirs.object_classes[:, :m])  # type: ignore[index]
        assert torch.allclose(mine.object_boxes, theirs.object_boxes[:, :m])  # type: ignore[index]
        assert torch.equal(mine.object_masks, theirs.object_masks[:, :m])  # type: ignore[index]
    resized = load(f"coco:{tmp_path / 'coco'}", image_size=64)
    assert torch.allclose(resized.train.object_boxes, back.train.object_boxes * 2)  # type: ignore[operator]


def _coco_folder(tmp_path: Path, edit: dict[str, object] | None = None, image: bytes | None = None) -> Path:
    folder = tmp_path / "boxes"
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "images" / "a.png")
    if image is not None:
        (folder / "images" / "a.png").write_bytes(image)
    values: dict[str, object] = {
        "images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 8], "iscrowd": 0}],
        "categories": [{"id": 3, "name": "cat"}]}
    annotation = values["annotations"][0]  # type: ignore[index]
    for key, value in (edit or {}).items():
        annotation[key] = value
    (folder / "annotations.json").write_text(json.dumps(values))
    return folder


def test_a_one_annotation_coco_folder_reads(tmp_path: Path) -> None:
    from cnnkit.data.coco import load_coco

    data = load_coco(_coco_folder(tmp_path))
    assert data.train.class_names == ("cat",)
    everything = torch.cat([data.train.object_boxes, data.test.object_boxes]) if data.test is not None else \
        data.train.object_boxes
    assert everything.tolist() == [[[2.0, 3.0, 12.0, 11.0]]]  # type: ignore[union-attr]


@pytest.mark.parametrize(("edit", "message"), [
    ({"bbox": [25, 3, 10, 8]}, r"annotation 7: the box \[x, y, w, h\] = \[25, 3, 10, 8\] lies outside its image 'a.png' of 30x20"),
    ({"bbox": [2, 3, 0, 8]}, r"annotation 7: the box has non-positive width or height"),
    ({"category_id": 9}, r"annotation 7: category_id 9 is not among the categories \[3\]"),
    ({"image_id": 2}, r"annotation 7: image_id 2 is not among the images"),
    ({"bbox": "wide"}, r"annotation 7: `bbox` must be \[x, y, width, height\]"),
    ({"segmentation": [[1, 2, 3]]}, r"annotation 7: `segmentation` cannot be read"),
])
def test_bad_annotations_name_the_annotation(tmp_path: Path, edit: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load(f"coco:{_coco_folder(tmp_path, edit)}")


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    folder = _coco_folder(tmp_path, image=b"not a png")
    with pytest.raises(ValueError, match=r"a.png' cannot be decoded as an image .*image id 1"):
        load(f"coco:{folder}")
    (folder / "images" / "a.png").unlink()
    with pytest.raises(ValueError, match=r"image file 'a.png' is missing"):
        load(f"coco:{folder}")
    (folder / "annotations.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"annotations.json: not valid JSON"):
        load(f"coco:{folder}")
