"""``fit``: the training loop, one readable function with numbered steps and a short list of hook points.

Hook points (methods a callback may define, called in this order):

- ``on_fit_start(state)``: before the first batch (after a resume: before the next one);
- ``on_batch_end(state)``: after every optimizer step;
- ``on_epoch_end(state, record)``: after evaluation, with the epoch's metrics record;
- ``on_fit_end(state)``: after the last epoch;
- ``on_interrupt(state)``: Ctrl-C or a non-finite loss stopped the run.

Every random choice (shuffle order, augmentation, dropout) is seeded from
``(seed, epoch, batch)``, so a run stopped after any batch and resumed from its
checkpoint continues exactly as if it had never stopped.

Under torchrun (``state.place``, see :mod:`cnnkit.training.distributed`) each
process trains on its shard of every global batch through the DDP wrapper in
``state.engine``; the epoch's metrics are summed over the processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnkit.data import BatchTransform, batches
from cnnkit.training.config import TrainConfig
from cnnkit.training.distributed import SINGLE, Distributed, local_batch_size, sum_across
from cnnkit.training.hardware import Runtime
from cnnkit.training.optim import make_optimizer, make_scheduler
from cnnkit.training.tasks import Task, make_task
from cnnkit.training.tasks import layout as _layout


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the message says where and what to try."""


@dataclass
class TrainState:
    """Everything a checkpoint holds: enough to continue the run exactly."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    config: TrainConfig
    runtime: Runtime
    steps_per_epoch: int
    epoch: int = 0  # completed epochs
    batch: int = 0  # completed batches of the current epoch
    loss_sum: float = 0.0  # over the current epoch's completed batches
    correct: float = 0  # the task's training metric summed over the epoch's images (classify: right answers)
    seen: int = 0
    elapsed: float = 0.0  # training seconds before this process started
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""
    place: Distributed = SINGLE  # this process's rank among torchrun's processes
    engine: nn.Module | None = None  # what training steps call (DDP and/or torch.compile of model); None: model

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.batch


def seed_for(seed: int, epoch: int, batch: int, rank: int = 0) -> int:
    """A distinct, reproducible seed for each (run seed, epoch, batch, process); batch -1 is the epoch's shuffle."""
    return (seed * 1_000_003 + epoch * 10_007 + batch + 1 + rank * 998_244_353) % (2**63)


def _seed_dropout(seed: int, device: torch.device) -> None:
    """Seed the global generator that dropout draws from: the CPU's, and the training GPU's on CUDA.

    Not ``torch.manual_seed``: on a machine without CUDA/XPU/MTIA it queues a
    lazy seeding call with a formatted stack trace for each of those back-ends,
    every time: milliseconds per batch, and a list that grows for the whole run.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


def new_state(model: nn.Module, config: TrainConfig, runtime: Runtime, train_size: int,
              place: Distributed = SINGLE) -> TrainState:
    """Optimizer and schedule for a fresh run over ``train_size`` images (split across ``place.world_size``)."""
    steps = math.ceil(math.ceil(train_size / place.world_size) / local_batch_size(config.batch_size, place))
    optimizer = make_optimizer(model, config)
    return TrainState(model, optimizer, make_scheduler(optimizer, config, steps), config, runtime, steps, place=place)


def _evaluate(state: TrainState, evaluation: tuple[torch.Tensor, torch.Tensor], transform: BatchTransform,
              task: Task) -> dict[str, float]:
    """The task's held-out scores of ``state.model``.

    Under torchrun, a task whose scores are means over images (``task.per_image``)
    lets each process take every world_size-th image and the weighted sums meet;
    other scores (mean IoU) are computed by every process on the whole split.
    """
    place, config = state.place, state.config
    if place.world_size == 1 or not task.per_image:
        return task.evaluate(state.model, *evaluation, transform, state.runtime, seed=config.seed)
    images, targets = evaluation[0][place.rank :: place.world_size], evaluation[1][place.rank :: place.world_size]
    scores = task.evaluate(state.model, images, targets, transform, state.runtime, seed=config.seed)
    count = len(images)
    names = sorted(scores)
    sums = sum_across([scores[name] * count for name in names] + [count], place, state.runtime.device)
    return {name: value / sums[-1] for name, value in zip(names, sums[:-1], strict=True)}


def _call(callbacks: Iterable[Any], event: str, *args: Any) -> None:
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is None:
            continue
        try:
            method(*args)
        except Exception as error:
            raise RuntimeError(f"callback {type(callback).__name__} failed at {event}: {error}") from error


def fit(state: TrainState, train: tuple[torch.Tensor, torch.Tensor],
        evaluation: tuple[torch.Tensor, torch.Tensor] | None, transform: BatchTransform, *,
        eval_split: str = "test", callbacks: Sequence[Any] = (), task: Task | None = None) -> TrainState:
    """Train ``state.model`` on ``train`` until ``state.config.epochs`` epochs are complete.

    ``train`` and ``evaluation`` are ``(images, targets)``: ``(N, C, H, W)`` uint8
    and the ``task``'s targets (default: the config's task; classify: ``(N,)``
    int64 labels) on the training device. ``transform`` normalises every
    batch and, in training, augments it (seeded by epoch and batch). Returns
    the state; ``state.stop_reason`` is ``"interrupted"`` after Ctrl-C (the
    callbacks' ``on_interrupt`` has saved what it needs). A non-finite loss calls
    ``on_interrupt`` and raises :class:`TrainingDiverged`.
    """
    config, runtime, model, place = state.config, state.runtime, state.model, state.place
    engine = state.engine or model
    batch_size = local_batch_size(config.batch_size, place)
    task = task or make_task(config.task, config.noise, tta=config.tta)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
    model.train()
    started = time.perf_counter() - state.elapsed
    _call(callbacks, "on_fit_start", state)
    # 0. nothing random reaches the input (no augmentation): normalise the training images once, not every batch
    prepared = task.prepare_once(*train, transform, runtime)
    try:
        while state.epoch < config.epochs:
            # 1. this epoch's order of the training images: fixed by (seed, epoch), whatever happened before
            shuffle = torch.Generator().manual_seed(seed_for(config.seed, state.epoch, -1))
            epoch_clock, epoch_images = time.perf_counter(), 0
            shard = batches(prepared or train, batch_size, shuffle=True, generator=shuffle, rank=place.rank, world_size=place.world_size)
            for index, (images, y) in enumerate(shard):
                if index < state.batch:
                    continue  # resumed mid-epoch: this batch was trained before the interruption
                # 2. the batch: uint8 -> the task's input and target (normalised, augmented, corrupted),
                #    every draw seeded by (seed, epoch, batch, process)
                batch_seed = seed_for(config.seed, state.epoch, state.batch, place.rank)
                _seed_dropout(batch_seed, runtime.device)
                generator = torch.Generator(device=images.device).manual_seed(batch_seed) if task.draws(transform) else None
                x, y = (images, y) if prepared else task.prepare(images, y, transform, generator)
                x = _layout(x, runtime)
                # 3. forward and loss, in the run's precision
                with runtime.autocast():
                    output = engine(x)
                    loss = task.loss(output, y, config.label_smoothing)
                # 4. stop before a non-finite loss can reach the weights
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    state.stop_reason = "diverged"
                    _call(callbacks, "on_interrupt", state)
                    lr = state.optimizer.param_groups[0]["lr"]
                    raise TrainingDiverged(
                        f"the training loss became {loss_value} at epoch {state.epoch + 1}, batch {state.batch + 1} "
                        f"(learning rate {lr:.3g}). The weights of the last finite step are kept. Try a smaller "
                        f"--lr, --clip-grad-norm 1.0, or --precision fp32."
                    )
                # 5. backward, optional clipping, optimizer step, schedule step
                state.optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.clip_grad_norm is not None:
                    scaler.unscale_(state.optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
                scaler.step(state.optimizer)
                scaler.update()
                state.scheduler.step()
                # 6. running metrics of the epoch
                count = y.shape[0]
                state.loss_sum += loss_value * count
                state.correct += task.score(output.detach(), y)
                state.seen += count
                epoch_images += count
                state.batch += 1
                _call(callbacks, "on_batch_end", state)
            # 7. end of epoch: evaluate, record, hand over to the callbacks (checkpoint, log, progress)
            loss_sum, correct, seen, images_seen = sum_across(
                [state.loss_sum, state.correct, state.seen, epoch_images], place, runtime.device)
            record: dict[str, Any] = {
                "epoch": state.epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                f"train_{task.metric}": correct / max(seen, 1),
                "lr": state.optimizer.param_groups[0]["lr"],
            }
            train_seconds = time.perf_counter() - epoch_clock
            # a large held-out split can cost more than the epoch: eval_every thins it out, the last epoch always has it
            if evaluation is not None and ((state.epoch + 1) % config.eval_every == 0 or state.epoch + 1 == config.epochs):
                scores = _evaluate(state, evaluation, transform, task)
                record.update({f"{eval_split}_{name}": value for name, value in scores.items()})
            record["time"] = time.perf_counter() - started  # since the run began: training and evaluation
            record["eval_time"] = time.perf_counter() - epoch_clock - train_seconds  # this epoch's evaluation
            record["images_per_second"] = images_seen / max(train_seconds, 1e-9)  # training only
            state.epoch, state.batch, state.loss_sum, state.correct, state.seen = state.epoch + 1, 0, 0.0, 0, 0
            state.elapsed = record["time"]
            state.history.append(record)
            _call(callbacks, "on_epoch_end", state, record)
    except KeyboardInterrupt:
        state.elapsed = time.perf_counter() - started
        state.stop_reason = "interrupted"
        _call(callbacks, "on_interrupt", state)
        return state
    _call(callbacks, "on_fit_end", state)
    return state
