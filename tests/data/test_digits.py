"""scikit-learn's digits: scaling to uint8 and the stratified test split."""

from __future__ import annotations

import sys

import pytest
import torch

from cnnkit.data import load


def test_digits_shapes_scaling_and_split() -> None:
    splits = load("digits")
    assert splits.test is not None and not splits.test_official and splits.eval_split == "test"
    assert len(splits.train) + len(splits.test) == 1797
    assert splits.input_shape == (1, 8, 8) and splits.class_names == tuple("0123456789")
    assert int(splits.train.images.max()) == 255  # 16 scaled to 255
    assert set(torch.unique(splits.train.images).tolist()) <= {round(v * 255 / 16) for v in range(17)}
    for train_count, test_count in zip(splits.train.class_counts(), splits.test.class_counts(), strict=True):
        assert test_count == round(0.2 * (train_count + test_count))  # stratified: 20% of every class


def test_digits_split_depends_on_seed_only() -> None:
    a, b, c = load("digits", seed=1), load("digits", seed=1), load("digits", seed=2)
    assert a.test is not None and b.test is not None and c.test is not None
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.test.images, c.test.images)


def test_missing_scikit_learn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes `import sklearn.datasets` fail
    with pytest.raises(ValueError, match=r"comes with scikit-learn, which is not installed: run `pip install 'cnnkit\[data\]'`"):
        load("digits")
