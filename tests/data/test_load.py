"""load(): name resolution, validation splits, conversions, argument checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnkit.data import load


def test_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'fashon-mnist'. Did you mean 'fashion-mnist'.*Known: fashion-mnist, mnist, digits"):
        load("fashon-mnist")


def test_directory_name_suggests_folder_prefix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"write 'folder:"):
        load(str(tmp_path))


def test_val_split_is_carved_from_train_stratified_and_repeatable() -> None:
    plain = load("digits", seed=3)
    splits = load("digits", val_split=0.25, seed=3)
    assert splits.val is not None and splits.test is not None and plain.test is not None
    assert splits.eval_split == "val" and splits.evaluation is splits.val
    assert torch.equal(splits.test.images, plain.test.images)  # the test split does not move
    assert len(splits.train) + len(splits.val) == len(plain.train)
    for val_count, train_count in zip(splits.val.class_counts(), plain.train.class_counts(), strict=True):
        assert val_count == round(0.25 * train_count)
    again = load("digits", val_split=0.25, seed=3)
    assert again.val is not None and torch.equal(again.val.images, splits.val.images)
    assert splits.val.name == "digits/val" and splits.train.name == "digits/train"


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.1", True])
def test_bad_val_split(bad: object) -> None:
    with pytest.raises(ValueError, match=r"`val_split` must be a fraction in \[0, 1\)"):
        load("digits", val_split=bad)  # type: ignore[arg-type]


def test_resize_and_channels() -> None:
    splits = load("digits", image_size=16, grayscale=False)
    assert splits.input_shape == (3, 16, 16) and splits.test is not None and splits.test.input_shape == (3, 16, 16)
    assert torch.equal(splits.train.images[:, 0], splits.train.images[:, 2])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "digits", "num_samples": 10}, ValueError, r"`num_samples` sets how many images a synthetic dataset draws"),
        ({"name": "digits", "seed": -1}, ValueError, r"`seed` must be a non-negative int"),
        ({"name": "digits", "image_size": 0}, ValueError, r"`image_size` must be an int from 1 to 8192 or a pair"),
        ({"name": 3}, TypeError, r"`name` must be a dataset name"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load(**kwargs)


def test_describe_is_json() -> None:
    info = json.loads(json.dumps(load("shapes", num_samples=60, val_split=0.2).describe()))
    assert info["name"] == "shapes" and info["sizes"] == {"train": 36, "val": 12, "test": 12}
    assert info["eval_split"] == "val" and info["test_official"] is False and info["input_shape"] == [3, 32, 32]
