"""Many image files decoded at once: in ``torch.utils.data.DataLoader`` worker processes for a large folder, in
this process for a small one. What :mod:`cnnkit.data.folder`, :mod:`cnnkit.data.pairs` and
:mod:`cnnkit.data.coco` pack (:func:`decode_into`), batch by batch and in the files' order.

Decoding a small JPEG and fitting it to the size is mostly Python and Pillow work that holds the GIL, so threads
do not add up. Measured on a 2-core AMD EPYC, 20,000 JPEGs of 32x32: 5,800 images/s in one thread, 2,700 with
two threads, 8,200 with two worker processes. For large photos Pillow's own decoding dominates; processes run it
in parallel too.

Each image file is read by :func:`cnnkit.images.decode` (the one path from a file to pixels), through
:func:`read_image` or a layout's own reader (an image and its mask); a file that does not decode is reported with
its reason (:class:`Failure`), never raised inside a worker. A worker that dies (a file that crashes the
decoder) or stops answering is a ValueError that names the files it was reading, not a hang.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cnnkit.images import BadImage, Fit, bomb_warning_silenced, decode

if TYPE_CHECKING:
    from cnnkit.data.packed import SplitWriter

WORKERS_FROM = 2048  # files: fewer are decoded in this process (starting workers would cost more than they save)
BATCH = 256  # files a worker decodes and hands back at a time
TIMEOUT_S = 600  # a worker that returns no batch for this long is taken for stuck
_WORKERS_ENV = "CNNKIT_DECODE_WORKERS"  # how many worker processes; 0: decode in this process


Item = tuple[np.ndarray, bool, tuple[int, int], np.ndarray | None]
"""One file (or pair of files) read: pixels ``(H, W, 3) uint8``, whether stored grey, its own (width, height), and
the class ids ``(H, W) uint8`` of its mask where there is one (segmentation pairs), else None."""


@dataclass(frozen=True)
class Failure:
    """Why one job could not be read: the file at fault, what it is ("image", "mask"), the reason, and whether it
    may be skipped (``skip_bad_images``) or is an error in any case (a mask of another size: a wrong pair)."""

    file: str
    what: str
    reason: str
    fatal: bool = False

    def error(self) -> ValueError:
        """The one-line error for this failure when it is not skipped."""
        if self.fatal:
            return ValueError(self.reason)
        try:
            size = f"a file of {os.stat(self.file).st_size} bytes"
        except OSError:
            size = "a file that cannot be read"
        return ValueError(f"{self.what} file {self.file!r} {self.reason}; or pass skip_bad_images=True "
                          f"(--skip-bad-images) to leave such files out. Received: {size}")

    def skipped(self) -> str:
        """The ``skipped`` record: ``path: reason``."""
        return f"{self.file}: {self.reason}"


class Unreadable(Exception):
    """Raised by a reader for a job it cannot read; carries the :class:`Failure`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure)
        self.failure = failure


Reader = Callable[[Any, tuple[int, int]], Item]  # (job, (H, W)) -> Item, or Unreadable


def file_of(job: Any) -> Path:
    """The file a job names: the job itself (an image path), or its first part (a pair's image, a COCO image)."""
    return Path(job[0] if isinstance(job, tuple) else job)


def read_image(path: Path, size: tuple[int, int], fit: Fit = "crop") -> Item:
    """The image file ``path`` fitted to ``size`` (:func:`cnnkit.images.decode`): the reader of class folders."""
    try:
        pixels, grey, own = decode(path, size, fit)
    except BadImage as error:
        raise Unreadable(Failure(str(path), "image", str(error))) from None
    return pixels, grey, own, None


@dataclass(frozen=True)
class Decoded:
    """One batch of jobs, in their order: ``pixels`` ``(n, H, W, 3) uint8`` of those that were read (``n`` of
    them), whether each was stored grey, each one's own (width, height), their masks ``(n, H, W) uint8`` (None
    unless the reader reads masks), and for each job that failed its position in the batch and why."""

    pixels: np.ndarray
    greys: list[bool]
    sizes: list[tuple[int, int]]
    masks: np.ndarray | None
    errors: dict[int, Failure]


class _Jobs(torch.utils.data.Dataset[Item | Failure]):
    """The jobs as a map-style dataset: item ``i`` is job ``i`` read, or why it could not be."""

    def __init__(self, jobs: Sequence[Any], size: tuple[int, int], read: Reader) -> None:
        self.jobs, self.size, self.read = jobs, size, read

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> Item | Failure:
        try:
            with bomb_warning_silenced():
                return self.read(self.jobs[index], self.size)
        except Unreadable as error:
            return error.failure


class _Collate:
    """A batch's items -> one :class:`Decoded` (a picklable callable, as a worker's collate function must be)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, items: list[Item | Failure]) -> Decoded:
        read = [item for item in items if not isinstance(item, Failure)]
        pixels = np.stack([p for p, _, _, _ in read]) if read else np.zeros((0, *self.size, 3), dtype=np.uint8)
        masks = None
        if read and read[0][3] is not None:
            masks = np.stack([m for _, _, _, m in read])  # type: ignore[misc]
        errors = {i: item for i, item in enumerate(items) if isinstance(item, Failure)}
        return Decoded(pixels, [grey for _, grey, _, _ in read], [own for _, _, own, _ in read], masks, errors)


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


def decode_files(jobs: Sequence[Any], size: tuple[int, int], *, read: Reader = read_image,
                 workers: int | None = None) -> Iterator[Decoded]:
    """``jobs`` (image paths, or whatever ``read`` takes) read and fitted to ``size`` (``(H, W)``), :data:`BATCH`
    at a time, in order.

    ``workers``: worker processes (None: :func:`worker_count`); 0 reads here. Yields one :class:`Decoded` per
    batch; a worker that dies or hangs is a ValueError naming the files in flight.
    """
    count = worker_count(len(jobs)) if workers is None else workers
    dataset, collate = _Jobs(jobs, size, read), _Collate(size)
    if count == 0:
        for start in range(0, len(jobs), BATCH):
            yield collate([dataset[i] for i in range(start, min(start + BATCH, len(jobs)))])
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, num_workers=count, collate_fn=collate,
                                         timeout=TIMEOUT_S, prefetch_factor=2, multiprocessing_context="fork")
    done = 0
    try:
        for batch in loader:
            yield batch
            done += 1
    except RuntimeError as error:
        raise stopped(error, jobs, done * BATCH, count) from None


def stopped(error: RuntimeError, jobs: Sequence[Any], first: int, workers: int) -> ValueError:
    """The error for a worker killed by a signal or silent past :data:`TIMEOUT_S` (``error``: torch's words for
    it), naming the files that were in flight from ``jobs[first]`` on (a pair's image file for a pair); another
    RuntimeError is raised as it is.

    torch reports a killed worker from its SIGCHLD handler, wherever the main thread is at that moment, so a
    caller that does more than iterate (:func:`decode_into` writes each batch) catches it around its whole loop
    too and calls this."""
    if "DataLoader" not in str(error):
        raise error
    first = min(first, len(jobs) - 1)
    last = min(first + 2 * max(workers, 1) * BATCH, len(jobs)) - 1
    paths = [file_of(jobs[first]), file_of(jobs[last])]
    return ValueError(
        f"decoding images: a worker process stopped ({str(error).splitlines()[0]}) while reading the files from "
        f"{str(paths[0])!r} to {str(paths[1])!r}; one of them may crash or stall the image decoder: move it "
        f"out of the folder, or set {_WORKERS_ENV}=0 to decode in this process and find it")


Annotate = Callable[[list[int], Decoded], tuple[list[int], dict[str, np.ndarray]]]
"""What a layout adds to a batch of images read: ``(indices of the jobs read, the batch)`` -> each image's label
and the per-image arrays packed beside the images (``{"segmentation": (n, H, W) uint8}``, or none)."""


def decode_into(writer: SplitWriter, jobs: Sequence[Any], size: tuple[int, int], skip_bad_images: bool,
                annotate: Annotate, title: str, read: Reader = read_image) -> None:
    """Read ``jobs`` a batch at a time (:func:`decode_files`) into the split being packed, ``writer``.

    A job that cannot be read stops here with a ValueError naming its file, or is left out and recorded in
    ``writer.skipped`` (``skip_bad_images``; never a fatal :class:`Failure`). ``annotate`` gives the labels and
    arrays of the images read. A worker killed while this loop writes a batch is named too (:func:`stopped`).
    """
    from cnnkit.progress import Ticker

    with Ticker(title, len(jobs), "images") as ticker:
        try:
            for start, batch in zip(range(0, len(jobs), BATCH), decode_files(jobs, size, read=read), strict=True):
                stop = min(start + BATCH, len(jobs))
                for failure in batch.errors.values():
                    if failure.fatal or not skip_bad_images:
                        raise failure.error()
                    writer.skipped.append(failure.skipped())
                kept = [index for index in range(start, stop) if index - start not in batch.errors]
                if kept:
                    labels, arrays = annotate(kept, batch)
                    files = [str(file_of(jobs[i])) for i in kept]
                    writer.add(torch.from_numpy(batch.pixels).permute(0, 3, 1, 2), batch.greys, labels, files, arrays)
                for _ in range(start, stop):  # one at a time, as the log's heartbeat counts them
                    ticker.advance()
        except RuntimeError as error:  # torch raises a dead worker's error wherever this loop is
            raise stopped(error, jobs, ticker.done, worker_count(len(jobs))) from None
