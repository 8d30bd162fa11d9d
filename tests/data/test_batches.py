"""The in-memory batch iterator: coverage, order, determinism, sharding across ranks."""

from __future__ import annotations

import pytest
import torch

from cnnkit.data import batches, draw_segmentation


def _data(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous(), torch.arange(n)


def test_in_order_batches_are_views() -> None:
    images, labels = _data()
    out = list(batches((images, labels), 4))
    assert [b[1].tolist() for b in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert out[1][0].data_ptr() == images[4:].data_ptr()  # a slice, not a copy
    assert len(batches((images, labels), 4)) == 3 and len(batches((images, labels), 4, drop_last=True)) == 2
    assert [len(b[1]) for b in batches((images, labels), 4, drop_last=True)] == [4, 4]


def test_shuffle_covers_everything_repeatably_and_changes_each_epoch() -> None:
    data = _data(100)
    loader = batches(data, 32, shuffle=True, generator=torch.Generator().manual_seed(0))
    first, second = [torch.cat([b[1] for b in loader]) for _ in range(2)]
    assert sorted(first.tolist()) == list(range(100)) and not torch.equal(first, second)
    again = batches(data, 32, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([b[1] for b in again]), first)
    for images, labels in loader:
        assert torch.equal(images[:, 0, 0, 0].long(), labels)  # images and labels gathered alike


def test_sharding_splits_each_epoch_across_ranks() -> None:
    data = _data(10)
    seen = []
    for rank in range(3):
        shard = batches(data, 2, shuffle=True, generator=torch.Generator().manual_seed(7), rank=rank, world_size=3)
        labels = torch.cat([b[1] for b in shard]).tolist()
        assert len(labels) == 4 and len(shard) == 2  # ceil(10 / 3), padded like DistributedSampler
        seen += labels
    assert set(seen) == set(range(10)) and len(seen) == 12


def test_segmentation_dataset_yields_class_maps() -> None:
    ds = draw_segmentation(20, seed=0)
    images, targets = next(iter(batches(ds, 8)))
    assert images.shape == (8, 3, 32, 32) and targets.shape == (8, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"`batch_size` must be an int >= 1"),
        ({"batch_size": 2, "rank": 2, "world_size": 2}, r"`rank` must be in \[0, world_size\)"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batches(_data(), **kwargs)


def test_tensors_must_share_their_length() -> None:
    with pytest.raises(ValueError, match=r"must share a non-zero first dimension. Received: \[\(10, 1, 2, 2\), \(9,\)\]"):
        batches((_data()[0], torch.arange(9)), 2)
