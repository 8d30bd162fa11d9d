"""``fit``: the training loop, one readable function with numbered steps and a short list of hook points.

``fit`` reads a :class:`TrainState` (network, optimizer, schedule, runtime and
the few :class:`LoopOptions` a loop needs), the data, the
:class:`~cnnkit.tasks.Task` and a list of :class:`Callback` objects; it knows
nothing of run directories or configuration files. Hook points (called in this
order; a callback overrides the ones it needs):

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
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnkit.data import BatchTransform, batches
from cnnkit.runtime import Runtime
from cnnkit.tasks import Task
from cnnkit.tasks.base import layout as _layout
from cnnkit.training.distributed import SINGLE, Distributed, local_batch_size, sum_across


class DeferredInterrupt:
    """Ctrl-C (SIGINT) while training sets :attr:`requested`; the loop stops at the next batch boundary, so a
    checkpoint never holds half a step. A second Ctrl-C interrupts at once (that state is not saved).

    Installed only in the main thread (where Python delivers signals); :meth:`restore` puts the old handler back.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None else signal.default_int_handler)
            self.installed = False


class TrainingDiverged(ValueError):
    """The loss or the weights became NaN or infinite; the message says where and what to try."""


def _weights_diverged(state: TrainState) -> str | None:
    """Why training must stop if a weight of ``state.model`` is NaN or infinite, else None."""
    from cnnkit.runs import first_non_finite

    bad = first_non_finite(state.model.state_dict())
    if bad is None:
        return None
    lr = state.optimizer.param_groups[0]["lr"]
    return (f"the weights became NaN or infinite during epoch {state.epoch + 1} ({bad}; the loss was finite, an "
            f"update overflowed; learning rate {lr:.3g}). Try a smaller --lr or --clip-grad-norm 1.0.")


@dataclass(frozen=True)
class LoopOptions:
    """What the loop itself reads: how long, in what batches, seeded how, and the step's extras."""

    epochs: int  # train until this many epochs are complete
    batch_size: int  # images per optimizer step, over all processes
    seed: int = 0  # shuffles, augmentation and dropout are seeded from (seed, epoch, batch)
    label_smoothing: float = 0.0  # cross-entropy target smoothing (tasks whose loss is a cross-entropy)
    clip_grad_norm: float | None = None  # clip the global gradient norm to this value
    eval_every: int = 1  # evaluate every this many epochs, and after the last


class Callback:
    """A hook object for :func:`fit`: override the events you need; the others do nothing.

    A callback that raises stops training with a ``RuntimeError`` naming it and the event.
    """

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first batch (after a resume: before the next one)."""

    def on_batch_end(self, state: TrainState) -> None:
        """After every optimizer step; ``state.batch`` counts the epoch's completed batches."""

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        """After the epoch's evaluation; ``record`` is its line of ``metrics.jsonl``."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the last epoch."""

    def on_interrupt(self, state: TrainState) -> None:
        """Ctrl-C (``state.stop_reason == "interrupted"``) or a non-finite loss (``"diverged"``) stopped the run."""


@dataclass
class TrainState:
    """Everything a checkpoint holds: enough to continue the run exactly."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    options: LoopOptions
    runtime: Runtime
    steps_per_epoch: int
    epoch: int = 0  # completed epochs
    batch: int = 0  # completed batches of the current epoch
    loss_sum: float = 0.0  # over the current epoch's completed batches
    plain_loss_sum: float = 0.0  # the same without label smoothing (the held-out loss's footing); 0 without smoothing
    correct: float = 0  # the task's training metric summed over the epoch's images (classify: right answers)
    seen: int = 0
    elapsed: float = 0.0  # training seconds before this process started
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""
    stop_requested: bool = False  # a callback asks the loop to end after this epoch, as if it were the last
    torn: bool = False  # interrupted in the middle of a step: the state must not be saved as a checkpoint
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


def steps_per_epoch(train_size: int, batch_size: int, place: Distributed = SINGLE) -> int:
    """Optimizer steps in one epoch over ``train_size`` images split across ``place.world_size`` processes."""
    return math.ceil(math.ceil(train_size / place.world_size) / local_batch_size(batch_size, place))


def _evaluate(state: TrainState, evaluation: tuple[torch.Tensor, torch.Tensor], transform: BatchTransform | None,
              task: Task) -> dict[str, float]:
    """The task's held-out scores of ``state.model``.

    Under torchrun, a task whose scores are means over images (``task.per_image``)
    lets each process take every world_size-th image and the weighted sums meet;
    other scores (mean IoU) are computed by every process on the whole split.
    """
    place, options = state.place, state.options
    if place.world_size == 1 or not task.per_image:
        return task.evaluate(state.model, *evaluation, transform, state.runtime, seed=options.seed)
    images, targets = evaluation[0][place.rank :: place.world_size], evaluation[1][place.rank :: place.world_size]
    scores = task.evaluate(state.model, images, targets, transform, state.runtime, seed=options.seed)
    count = len(images)
    names = sorted(scores)
    sums = sum_across([scores[name] * count for name in names] + [count], place, state.runtime.device)
    return {name: value / sums[-1] for name, value in zip(names, sums[:-1], strict=True)}


LR_POINTS = 50  # learning-rate samples recorded per epoch, for the curves


def _lr_trace(state: TrainState) -> list[list[float]]:
    """``[[epoch, rate], ...]``: the first group's rate at about :data:`LR_POINTS` steps of the epoch just trained,
    the epoch as a fraction (2.5 = half-way through the third), so that warm-up and one-cycle show in the curves.

    Read from the schedule's own rule (a ``LambdaLR``, as cnnkit's schedules are); [] for another scheduler.
    """
    scheduler = state.scheduler
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        return []
    rule, base = scheduler.lr_lambdas[0], scheduler.base_lrs[0]
    stride = max(1, state.steps_per_epoch // LR_POINTS)
    first = state.epoch * state.steps_per_epoch
    return [[round(state.epoch + k / state.steps_per_epoch, 4), float(base * rule(first + k))]
            for k in range(0, state.steps_per_epoch, stride)]


def _call(callbacks: Iterable[Callback], event: str, *args: Any) -> None:
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is None:
            continue
        try:
            method(*args)
        except OSError:
            raise  # a file that could not be written: the callback's own message names it
        except Exception as error:
            raise RuntimeError(f"callback {type(callback).__name__} failed at {event}: {error}") from error


def fit(state: TrainState, train: tuple[torch.Tensor, torch.Tensor],
        evaluation: tuple[torch.Tensor, torch.Tensor] | None, transform: BatchTransform | None, task: Task, *,
        eval_split: str = "test", callbacks: Sequence[Callback] = ()) -> TrainState:
    """Train ``state.model`` for ``task`` on ``train`` until ``state.options.epochs`` epochs are complete.

    ``train`` and ``evaluation`` are ``(images, targets)``: ``(N, C, H, W)`` uint8
    and the ``task``'s targets (classify: ``(N,)`` int64 labels) on the training
    device. ``transform`` normalises every batch and, in training, augments it
    (seeded by epoch and batch); ``transform=None`` means the images are network
    inputs already (e.g. cached features ``(N, F)``), used as they are. Returns
    the state; ``state.stop_reason`` is ``"interrupted"`` after Ctrl-C (the
    callbacks' ``on_interrupt`` has saved what it needs). A non-finite loss calls
    ``on_interrupt`` and raises :class:`TrainingDiverged`.
    """
    options, runtime, model, place = state.options, state.runtime, state.model, state.place
    engine = state.engine or model
    batch_size = local_batch_size(options.batch_size, place)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
    model.train()
    started = time.perf_counter() - state.elapsed
    _call(callbacks, "on_fit_start", state)
    # 0. nothing random reaches the input (no augmentation): normalise the training images once, not every batch
    prepared = train if transform is None else task.prepare_once(*train, transform, runtime)
    smoothing = options.label_smoothing > 0 and task.smooths_labels
    steady = True  # False while a step or the epoch's bookkeeping is half done
    interrupts = DeferredInterrupt()  # Ctrl-C asks the loop to stop at the next batch boundary
    try:
        while state.epoch < options.epochs:
            # 1. this epoch's order of the training images: fixed by (seed, epoch), whatever happened before
            shuffle = torch.Generator().manual_seed(seed_for(options.seed, state.epoch, -1))
            epoch_clock, epoch_images = time.perf_counter(), 0
            shard = batches(prepared or train, batch_size, shuffle=True, generator=shuffle, rank=place.rank, world_size=place.world_size)
            for index, (images, y) in enumerate(shard):
                if index < state.batch:
                    continue  # resumed mid-epoch: this batch was trained before the interruption
                # 2. the batch: uint8 -> the task's input and target (normalised, augmented, corrupted),
                #    every draw seeded by (seed, epoch, batch, process)
                batch_seed = seed_for(options.seed, state.epoch, state.batch, place.rank)
                _seed_dropout(batch_seed, runtime.device)
                if prepared or transform is None:
                    x = images
                else:
                    draws = task.draws(transform)
                    generator = torch.Generator(device=images.device).manual_seed(batch_seed) if draws else None
                    x, y = task.prepare(images, y, transform, generator)
                x = _layout(x, runtime)
                # 3. forward and loss, in the run's precision (from here until the counters move, the state is torn)
                steady = False
                with runtime.autocast():
                    output = engine(x)
                    loss = task.loss(output, y, options.label_smoothing)
                # 4. stop before a non-finite loss can reach the weights
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    state.stop_reason = "diverged"
                    _call(callbacks, "on_interrupt", state)
                    lr = state.optimizer.param_groups[0]["lr"]
                    raise TrainingDiverged(
                        f"the training loss became {loss_value} at epoch {state.epoch + 1}, batch {state.batch + 1} "
                        f"(learning rate {lr:.3g}). Try a smaller --lr, --clip-grad-norm 1.0, or --precision fp32."
                    )
                # 5. backward, optional clipping, optimizer step, schedule step
                state.optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if options.clip_grad_norm is not None:
                    scaler.unscale_(state.optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), options.clip_grad_norm)
                scaler.step(state.optimizer)
                scaler.update()
                state.scheduler.step()
                # 6. running metrics of the epoch
                count = y.shape[0]
                state.loss_sum += loss_value * count
                if smoothing:  # the loss the held-out split is scored with, so that the curves compare like with like
                    with torch.no_grad():
                        state.plain_loss_sum += float(task.loss(output.detach(), y, 0.0)) * count
                state.correct += task.score(output.detach(), y)
                state.seen += count
                epoch_images += count
                state.batch += 1
                steady = True
                _call(callbacks, "on_batch_end", state)
                if interrupts.requested:
                    raise KeyboardInterrupt  # Ctrl-C during the step: stop here, at the batch boundary
            # 7. end of epoch: evaluate, record, hand over to the callbacks (checkpoint, log, progress); a finite
            #    loss can still come with an update that overflowed the weights: nothing non-finite is ever recorded
            diverged = _weights_diverged(state)
            if diverged is not None:
                state.stop_reason = "diverged"
                _call(callbacks, "on_interrupt", state)
                raise TrainingDiverged(diverged)
            loss_sum, plain_sum, correct, seen, images_seen = sum_across(
                [state.loss_sum, state.plain_loss_sum, state.correct, state.seen, epoch_images], place, runtime.device)
            record: dict[str, Any] = {
                "epoch": state.epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                f"train_{task.metric}": correct / max(seen, 1),
                "lr": state.optimizer.param_groups[0]["lr"],
            }
            if smoothing:
                record["train_loss_unsmoothed"] = plain_sum / max(seen, 1)
            record["lr_steps"] = _lr_trace(state)
            train_seconds = time.perf_counter() - epoch_clock
            # a large held-out split can cost more than the epoch: eval_every thins it out, the last epoch always has it
            if evaluation is not None and ((state.epoch + 1) % options.eval_every == 0 or state.epoch + 1 == options.epochs):
                scores = _evaluate(state, evaluation, transform, task)
                record.update({f"{eval_split}_{name}": value for name, value in scores.items()})
            record["time"] = time.perf_counter() - started  # since the run began: training and evaluation
            record["eval_time"] = time.perf_counter() - epoch_clock - train_seconds  # this epoch's evaluation
            record["images_per_second"] = images_seen / max(train_seconds, 1e-9)  # training only
            steady = False
            state.epoch, state.batch, state.loss_sum, state.correct, state.seen = state.epoch + 1, 0, 0.0, 0, 0
            state.plain_loss_sum = 0.0
            state.elapsed = record["time"]
            state.history.append(record)
            steady = True
            _call(callbacks, "on_epoch_end", state, record)
            if interrupts.requested:
                raise KeyboardInterrupt
            if state.stop_requested:  # e.g. early stopping: the run ends here, normally
                break
    except KeyboardInterrupt:
        state.elapsed = time.perf_counter() - started
        state.stop_reason = "interrupted"
        state.torn = not steady  # a second Ctrl-C, or an interrupt raised inside the step: no checkpoint of this
        _call(callbacks, "on_interrupt", state)
        return state
    finally:
        interrupts.restore()
    _call(callbacks, "on_fit_end", state)
    return state
