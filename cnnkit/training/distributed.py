"""Multi-process training with PyTorch's own engine: ``torchrun --nproc_per_node=N -m cnnkit train ...``.

torchrun starts N copies of the command and tells each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). :func:`setup` reads it, joins the process group (gloo on the
CPU, NCCL on CUDA, each process on GPU ``LOCAL_RANK``) and the run then wraps
its network in :class:`~torch.nn.parallel.DistributedDataParallel`.

Batch semantics: ``--batch-size`` is the *global* batch. Each of the N
processes takes ``batch_size / N`` images a step (the batch size must divide
evenly), from the interleaved shard of the epoch's shuffled order that
:func:`cnnkit.data.batches` gives rank ``r`` (positions ``r, r + N, ...``), and
DDP averages the gradients. So step ``k`` trains on exactly the images that
step ``k`` of a one-process run with the same seed and batch size trains on,
with the same mean gradient, learning rate and number of steps. What differs:

- batch-norm statistics: on CUDA the layers become ``SyncBatchNorm`` (statistics over the global batch, as in
  one process); on the CPU, where PyTorch has no SyncBatchNorm, each process normalises over its own
  ``batch_size / N`` images, as DDP always does;
- random draws (augmentation, dropout) are seeded per (seed, epoch, batch, rank), so they differ from one
  process's draws while staying repeatable;
- a training set whose size N does not divide is padded by repeating its first images (like ``DistributedSampler``);
- floating-point sums run in another order, so weights agree to rounding, not bit for bit.

Rank 0 alone writes the run directory, the checkpoints, the metrics and the
progress; epoch metrics are summed over all processes first, and the
evaluation split is sharded across processes and summed (mean IoU, which pools the whole split, is computed whole by each), so every process
records the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a multi-process run (``world_size == 1``: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = Distributed()


def from_environment(environ: dict[str, str] | None = None) -> Distributed:
    """The place torchrun gave this process, or :data:`SINGLE` outside torchrun (or with one process)."""
    env = os.environ if environ is None else environ
    if not all(key in env for key in _ENV):
        return SINGLE
    try:
        rank, world_size, local_rank = (int(env[key]) for key in _ENV)
    except ValueError:
        raise ValueError(f"torchrun environment: RANK, WORLD_SIZE and LOCAL_RANK must be integers. Received: "
                         f"{', '.join(f'{k}={env[k]!r}' for k in _ENV)}") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(f"torchrun environment: need 0 <= RANK < WORLD_SIZE. Received: RANK={rank}, "
                         f"WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}")
    return Distributed(rank, world_size, local_rank) if world_size > 1 else SINGLE


def local_batch_size(batch_size: int, place: Distributed) -> int:
    """Images per step on each process: the global ``batch_size`` split evenly (a ``ValueError`` if it cannot be)."""
    if batch_size % place.world_size:
        raise ValueError(f"--batch-size {batch_size} is the global batch and must divide by the number of processes "
                         f"({place.world_size}); use e.g. --batch-size {batch_size // place.world_size * place.world_size or place.world_size}")
    return batch_size // place.world_size


def setup(place: Distributed, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on the CPU); returns this process's device.

    On CUDA each process uses GPU ``LOCAL_RANK``. A no-op for a single process.
    """
    if not place.active:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", place.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=place.rank,
                                world_size=place.world_size, device_id=device if device.type == "cuda" else None)
    return device


def teardown(place: Distributed, clean: bool = True) -> None:
    """Leave the process group: after a barrier when ``clean`` (all finished), at once after an error.

    A process that failed alone must not wait at a barrier the others never
    reach; it exits, and torchrun stops the rest.
    """
    if place.active and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def process_group(place: Distributed) -> Iterator[None]:
    """The block runs inside the process group joined by :func:`setup`; :func:`teardown` leaves it at the end."""
    try:
        yield
    except BaseException:
        teardown(place, clean=False)
        raise
    teardown(place, clean=True)


def wrap(model: nn.Module, place: Distributed, device: torch.device) -> nn.Module:
    """``model`` as DistributedDataParallel (the module that averages gradients); unchanged for one process.

    On CUDA, batch norm becomes SyncBatchNorm so its statistics cover the global batch.
    """
    if not place.active:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def sum_across(values: list[float], place: Distributed, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64, so counts stay exact); ``values`` for one."""
    if not place.active:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_text(text: str, place: Distributed) -> str:
    """Rank 0's ``text`` on every process (e.g. the run directory's name, which contains the time)."""
    if not place.active:
        return text
    box: list[object] = [text]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def barrier(place: Distributed) -> None:
    if place.active:
        dist.barrier()


__all__ = ["SINGLE", "Distributed", "barrier", "broadcast_text", "from_environment", "local_batch_size",
           "process_group", "setup", "sum_across", "teardown", "wrap"]
