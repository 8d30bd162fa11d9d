"""ImageDataset and DataSplits check their tensors when built; the stratified split."""

from __future__ import annotations

import pytest
import torch

from cnnkit.data import DataSplits, ImageDataset, stratified_split


def _ds(n: int = 6, labels: torch.Tensor | None = None, **kwargs: object) -> ImageDataset:
    return ImageDataset(
        images=torch.zeros(n, 1, 4, 4, dtype=torch.uint8),
        labels=torch.arange(n) % 3 if labels is None else labels,
        class_names=("a", "b", "c"),
        name="toy/train",
        source="/data/toy",
        **kwargs,  # type: ignore[arg-type]
    )


def test_label_out_of_range_names_dataset_label_and_range() -> None:
    with pytest.raises(ValueError, match=r"dataset 'toy/train' \(from /data/toy\): label 3 is out of range \[0, 3\)"):
        _ds(labels=torch.tensor([0, 1, 2, 3, 0, 1]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        _ds(labels=torch.tensor([0, 1, 2, -1, 0, 1]))


def test_counts_dtypes_and_shapes_checked() -> None:
    with pytest.raises(ValueError, match=r"`labels` must have shape \(6\). Received: shape=\(5,\)"):
        _ds(labels=torch.arange(5) % 3)
    with pytest.raises(TypeError, match=r"`images` must have dtype torch.uint8. Received: dtype=torch.float32"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64), ("a",), "x")
    with pytest.raises(TypeError, match=r"`labels` must have dtype torch.int64"):
        _ds(labels=torch.zeros(6, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"`masks` must have shape \(6, 4, 4\)"):
        _ds(masks=torch.zeros(6, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"`files` must name one file per image \(6\)"):
        _ds(files=("a.png",))


def test_subset_gathers_every_field() -> None:
    ds = _ds(boxes=torch.arange(24, dtype=torch.float32).view(6, 4), files=tuple(f"{i}.png" for i in range(6)))
    sub = ds.subset([4, 1], name="toy/val")
    assert sub.name == "toy/val" and sub.labels.tolist() == [1, 1] and sub.files == ("4.png", "1.png")
    assert sub.boxes is not None and sub.boxes[:, 0].tolist() == [16.0, 4.0]


def test_splits_must_agree_on_classes_and_shape() -> None:
    other = ImageDataset(torch.zeros(2, 1, 5, 5, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), ("a", "b", "c"), "toy/test")
    with pytest.raises(ValueError, match=r"must have the same classes and image shape"):
        DataSplits(train=_ds(), test=other, val=None, test_official=True)


def test_stratified_split_partitions_each_class() -> None:
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 1)
    keep, held = stratified_split(labels, 0.2, seed=0, stream=1)
    assert sorted(keep.tolist() + held.tolist()) == list(range(81))
    assert torch.bincount(labels[held], minlength=3).tolist() == [10, 6, 0]  # the lone sample stays in keep
    again, _ = stratified_split(labels, 0.2, seed=0, stream=1)
    other, _ = stratified_split(labels, 0.2, seed=0, stream=2)
    assert torch.equal(keep, again) and not torch.equal(keep, other)
