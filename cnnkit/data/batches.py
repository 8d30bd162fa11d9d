"""Mini-batches straight from in-memory tensors: one index gather per batch, no per-sample overhead.

A ``torch.utils.data.DataLoader`` calls ``__getitem__`` once per sample and
collates; for a dataset that already is one tensor, gathering a whole batch
with one indexing operation is far faster and keeps the data on its device.

For distributed training, ``rank`` / ``world_size`` shard every epoch's order
the way ``DistributedSampler`` does: the order is padded by repeating its
start to a multiple of ``world_size``, and rank ``r`` takes positions
``r, r + world_size, ...``; every rank must pass a generator seeded alike so
that all draw the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from cnnkit.data.dataset import ImageDataset


class Batches:
    """An iterable over mini-batches; each ``iter()`` is one epoch (a fresh order when shuffling).

    Yields tuples ``(images, targets)`` for an :class:`ImageDataset` (targets:
    labels, or the class maps of a segmentation dataset), or one slice of each
    tensor given. ``len()`` is the number of batches per epoch on this rank.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool,
                 generator: torch.Generator | None, drop_last: bool, rank: int, world_size: int) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size

    def samples_per_rank(self) -> int:
        """Samples this rank sees per epoch (all ranks see as many, some repeated when padding)."""
        n = int(self.tensors[0].shape[0])
        return -(-n // self.world_size)

    def __len__(self) -> int:
        per_rank = self.samples_per_rank()
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def _order(self) -> torch.Tensor | None:
        """Indices this rank visits this epoch, or None for plain slicing (no shuffle, one rank)."""
        n = int(self.tensors[0].shape[0])
        if not self.shuffle and self.world_size == 1:
            return None
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        total = self.samples_per_rank() * self.world_size
        if total > n:  # pad like DistributedSampler so every rank runs the same number of steps
            order = torch.cat([order, order.repeat(-(-total // n))[: total - n]])
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self._order()
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, self.samples_per_rank()), self.batch_size):
            if order is None:
                yield tuple(t[start : start + self.batch_size] for t in self.tensors)  # views, no copy
            else:
                index = order[start : start + self.batch_size].to(self.tensors[0].device)
                yield tuple(t.index_select(0, index) for t in self.tensors)


def batches(data: ImageDataset | Sequence[torch.Tensor], batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None, drop_last: bool = False, rank: int = 0,
            world_size: int = 1) -> Batches:
    """Mini-batches of ``data``: an :class:`ImageDataset` or tensors with a common first dimension ``N``.

    ``shuffle`` draws a new order every epoch from ``generator`` (give one for a
    repeatable run); ``drop_last`` leaves out a final short batch. Tensors stay
    on their device and keep their dtype: images come out ``(B, C, H, W) uint8``.

    >>> images, labels = next(iter(batches((torch.zeros(10, 1, 4, 4), torch.arange(10)), 4)))
    >>> images.shape, labels.tolist()
    (torch.Size([4, 1, 4, 4]), [0, 1, 2, 3])
    """
    tensors = (data.images, data.targets) if isinstance(data, ImageDataset) else tuple(data)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError(f"`data` must be an ImageDataset or a sequence of tensors. Received: {type(data).__name__}")
    sizes = {int(t.shape[0]) for t in tensors}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"`data` tensors must share a non-zero first dimension. Received: {[tuple(t.shape) for t in tensors]}")
    for name, value, low in (("batch_size", batch_size, 1), ("world_size", world_size, 1), ("rank", rank, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"`{name}` must be an int >= {low}. Received: {name}={value!r}")
    if rank >= world_size:
        raise ValueError(f"`rank` must be in [0, world_size). Received: rank={rank}, world_size={world_size}")
    return Batches(tensors, batch_size, shuffle, generator, drop_last, rank, world_size)
