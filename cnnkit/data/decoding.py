"""Many image files decoded at once: in ``torch.utils.data.DataLoader`` worker processes for a large folder, in
this process for a small one. What :mod:`cnnkit.data.folder` packs, batch by batch and in the files' order.

Decoding a small JPEG and fitting it to the size is mostly Python and Pillow work that holds the GIL, so threads
do not add up. Measured on a 2-core AMD EPYC, 20,000 JPEGs of 32x32: 5,800 images/s in one thread, 2,700 with
two threads, 8,200 with two worker processes. For large photos Pillow's own decoding dominates; processes run it
in parallel too.

Each file is read by :func:`cnnkit.images.decode` (the one path from a file to pixels); a file that does not
decode is reported with its reason, never raised inside a worker. A worker that dies (a file that crashes the
decoder) or stops answering is a ValueError that names the files it was reading, not a hang.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.images import BadImage, bomb_warning_silenced, decode

WORKERS_FROM = 2048  # files: fewer are decoded in this process (starting workers would cost more than they save)
BATCH = 256  # files a worker decodes and hands back at a time
TIMEOUT_S = 600  # a worker that returns no batch for this long is taken for stuck
_WORKERS_ENV = "CNNKIT_DECODE_WORKERS"  # how many worker processes; 0: decode in this process


@dataclass(frozen=True)
class Decoded:
    """One batch of files, in their order: ``pixels`` ``(n, H, W, 3) uint8`` of those that decoded (``n`` of
    them), whether each was stored grey, and for each file that did not decode its position in the batch and why."""

    pixels: np.ndarray
    greys: list[bool]
    errors: dict[int, str]


class _Files(torch.utils.data.Dataset[tuple[np.ndarray, bool] | str]):
    """The files as a map-style dataset: item ``i`` is file ``i`` decoded, or the reason it did not decode."""

    def __init__(self, paths: Sequence[Path], size: tuple[int, int]) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[np.ndarray, bool] | str:
        try:
            with bomb_warning_silenced():
                pixels, grey, _ = decode(self.paths[index], self.size)
        except BadImage as error:
            return str(error)
        return pixels, grey


class _Collate:
    """A batch's items -> one :class:`Decoded` (a picklable callable, as a worker's collate function must be)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, items: list[tuple[np.ndarray, bool] | str]) -> Decoded:
        decoded = [item for item in items if not isinstance(item, str)]
        pixels = np.stack([p for p, _ in decoded]) if decoded else np.zeros((0, *self.size, 3), dtype=np.uint8)
        errors = {i: item for i, item in enumerate(items) if isinstance(item, str)}
        return Decoded(pixels, [grey for _, grey in decoded], errors)


def can_fork() -> bool:
    """Whether this process may start forked workers: the fork start method exists (Linux; not Windows) and this
    is not itself a daemonic worker (a DataLoader's or a Pool's), which may not have children. Forked workers
    start in milliseconds with everything imported; spawned ones would import torch again."""
    return ("fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
            and torch.utils.data.get_worker_info() is None)


def worker_count(files: int) -> int:
    """Worker processes for ``files`` files: ``$CNNKIT_DECODE_WORKERS`` when set, else none below
    :data:`WORKERS_FROM` files and one per usable core (at most 8; under ``torchrun``, the cores shared among
    this machine's processes) above; none where this process may not fork (:func:`can_fork`)."""
    given = os.environ.get(_WORKERS_ENV, "").strip()
    if given:
        if not given.isdigit():
            raise ValueError(f"{_WORKERS_ENV} must be a whole number of worker processes (0: none). "
                             f"Received: {given!r}")
        return int(given) if can_fork() else 0
    if files < WORKERS_FROM or not can_fork():
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")  # torchrun's processes on this machine share its cores
    cores //= max(int(local), 1) if local.isdigit() else 1
    return min(cores, 8) if cores > 1 else 0


def decode_files(paths: Sequence[Path], size: tuple[int, int], workers: int | None = None) -> Iterator[Decoded]:
    """``paths`` decoded and fitted to ``size`` (``(H, W)``), :data:`BATCH` files at a time, in order.

    ``workers``: worker processes (None: :func:`worker_count`); 0 decodes here. Yields one :class:`Decoded` per
    batch; a worker that dies or hangs is a ValueError naming the files in flight.
    """
    count = worker_count(len(paths)) if workers is None else workers
    dataset, collate = _Files(paths, size), _Collate(size)
    if count == 0:
        for start in range(0, len(paths), BATCH):
            yield collate([dataset[i] for i in range(start, min(start + BATCH, len(paths)))])
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, num_workers=count, collate_fn=collate,
                                         timeout=TIMEOUT_S, prefetch_factor=2, multiprocessing_context="fork")
    done = 0
    try:
        for batch in loader:
            yield batch
            done += 1
    except RuntimeError as error:
        raise stopped(error, paths, done * BATCH, count) from None


def stopped(error: RuntimeError, paths: Sequence[Path], first: int, workers: int) -> ValueError:
    """The error for a worker killed by a signal or silent past :data:`TIMEOUT_S` (``error``: torch's words for
    it), naming the files that were in flight from ``paths[first]`` on; another RuntimeError is raised as it is.

    torch reports a killed worker from its SIGCHLD handler, wherever the main thread is at that moment, so a
    caller that does more than iterate (:func:`cnnkit.data.folder._decode_split` writes each batch) catches it
    around its whole loop too and calls this."""
    if "DataLoader" not in str(error):
        raise error
    first = min(first, len(paths) - 1)
    last = min(first + 2 * max(workers, 1) * BATCH, len(paths)) - 1
    return ValueError(
        f"decoding images: a worker process stopped ({str(error).splitlines()[0]}) while reading the files from "
        f"{str(paths[first])!r} to {str(paths[last])!r}; one of them may crash or stall the image decoder: move it "
        f"out of the folder, or set {_WORKERS_ENV}=0 to decode in this process and find it")
