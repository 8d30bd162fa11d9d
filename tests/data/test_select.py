"""Class subsets and per-class training subsets: relabelling, seeded draws, nesting, and their messages."""

from __future__ import annotations

import pytest
import torch

from cnnkit.data import ImageDataset, dominant_classes, load
from cnnkit.data.select import parse_classes, per_class_subset, select_classes
from cnnkit.training import TrainConfig

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def test_parse_classes_reads_ranges_indices_and_names_in_order() -> None:
    assert parse_classes(["5-9"], FASHION) == [5, 6, 7, 8, 9]
    assert parse_classes(["Bag", "0", 3], FASHION) == [8, 0, 3]
    assert parse_classes(["T-shirt/top", "Ankle boot"], FASHION) == [0, 9]  # a dash in a name is not a range


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["Hat", "Bag"], r"no class 'Hat' in this dataset; its classes are 0 T-shirt/top, 1 Trouser"),
        (["8-12"], r"class 10 is out of range; the dataset has 10 classes"),
        (["9-5"], r"the range '9-5' runs backwards; write 5-9"),
        (["Bag", "8"], r"class 8 \(Bag\) is listed twice"),
        (["3"], r"at least two classes"),
    ],
)
def test_parse_classes_errors(spec: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_classes(spec, FASHION)


def test_select_classes_relabels_in_the_order_given() -> None:
    splits = load("digits", seed=0)
    picked = select_classes(splits.train, [7, 2])
    assert picked.class_names == ("7", "2")
    original = splits.train.labels
    assert len(picked) == int(((original == 7) | (original == 2)).sum())
    # label 0 is now digit 7: the images are those the original labelled 7, in their original order
    assert torch.equal(picked.images[picked.labels == 0], splits.train.images[original == 7])
    assert torch.equal(picked.images[picked.labels == 1], splits.train.images[original == 2])


def test_per_class_subset_is_seeded_stratified_and_nested() -> None:
    train = load("digits", seed=0).train
    twenty = per_class_subset(train, 20, seed=4)
    assert twenty.class_counts() == [20] * 10
    assert torch.equal(per_class_subset(train, 20, seed=4).images, twenty.images)
    assert not torch.equal(per_class_subset(train, 20, seed=5).images, twenty.images)
    # the 10 per class of a seed are among its 20: growing the subset only adds images
    ten = per_class_subset(train, 10, seed=4)
    rows = {bytes(image.flatten().tolist()) for image in twenty.images}
    assert all(bytes(image.flatten().tolist()) in rows for image in ten.images)
    with pytest.raises(ValueError, match=r"class 0 \(0\) has \d+ training images, fewer than --train-per-class 1000"):
        per_class_subset(train, 1000, seed=0)


def test_load_cuts_every_split_and_keeps_the_test_split_whole() -> None:
    full = load("digits", seed=1)
    cut = load("digits", seed=1, classes=["5-9"], train_per_class=30, val_split=0.2)
    assert cut.class_names == ("5", "6", "7", "8", "9")
    assert cut.train.class_counts() == [30] * 5
    assert cut.test is not None and full.test is not None and cut.val is not None
    assert len(cut.test) == int((full.test.labels >= 5).sum())  # every test image of those classes
    assert set(cut.val.labels.tolist()) == {0, 1, 2, 3, 4}
    # the validation split does not depend on the training subset's size
    other = load("digits", seed=1, classes=["5-9"], train_per_class=10, val_split=0.2)
    assert other.val is not None and torch.equal(other.val.images, cut.val.images)


def test_train_config_checks_the_new_fields() -> None:
    config = TrainConfig.from_dict({"classes": ["0-4"], "train_per_class": 20, "eval_every": 5})
    assert config.classes == ["0-4"] and config.train_per_class == 20
    with pytest.raises(ValueError, match=r"--train-per-class must be at least 1. Received: 0"):
        TrainConfig.from_dict({"train_per_class": 0})
    with pytest.raises(ValueError, match=r"--eval-every must be at least 1"):
        TrainConfig.from_dict({"eval_every": 0})
    with pytest.raises(TypeError, match=r"--classes must be a list of names"):
        TrainConfig.from_dict({"classes": "0-4"})


def test_per_class_subset_of_segmentation_counts_each_image_under_its_largest_object() -> None:
    # five 4x4 scenes: class 1 covers most of the first three, class 2 most of the last two; the background (0)
    # is every image's largest area but no image's label
    seg = torch.zeros(5, 4, 4, dtype=torch.uint8)
    seg[:3, :2, :2] = 1  # 4 pixels of class 1
    seg[3:, :3, :3] = 2  # 9 pixels of class 2 ...
    seg[3:, 3, :2] = 1  # ... beside 2 of class 1
    names = ("background", "circle", "square")
    scenes = ImageDataset(images=torch.zeros(5, 1, 4, 4, dtype=torch.uint8), labels=dominant_classes(seg, 3),
                          class_names=names, name="toy-seg/train", source="test", segmentation=seg)
    two = per_class_subset(scenes, 2, seed=0)
    assert two.class_counts() == [0, 2, 2]
    assert two.segmentation is not None and torch.equal(dominant_classes(two.segmentation, 3), two.labels)
    message = ("dataset 'toy-seg/train' is a segmentation dataset, so --train-per-class counts each image under its "
               "largest object (the class covering the most pixels besides the background): class 2 (square) is the "
               "largest object of 2 training images, fewer than --train-per-class 3; ask for at most 2")
    with pytest.raises(ValueError) as error:
        per_class_subset(scenes, 3, seed=0)
    assert str(error.value) == message
    # the examiner's case: shapes-seg with --train-per-class used to fail on "class 0 has 0 training images"
    assert load("shapes-seg", train_per_class=5).train.class_counts() == [0, 5, 5, 5, 5, 5, 5]
