"""``train(config)`` and ``resume(run)``: data, network, run directory and the fit loop, end to end."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from cnnkit import network
from cnnkit.data import BatchTransform, DataSplits, ImageDataset, channel_stats
from cnnkit.memory import TooLarge, build_checked
from cnnkit.runs import CONFIG, SUMMARY, ModelCard, Run, check_out_folder
from cnnkit.runtime import Runtime, choose
from cnnkit.tasks import Task, make_task
from cnnkit.timing import phase
from cnnkit.training import distributed
from cnnkit.training.config import TrainConfig
from cnnkit.training.distributed import SINGLE, Distributed
from cnnkit.training.early_stop import EarlyStopping
from cnnkit.training.given import NOTHING_GIVEN, Given, check_module
from cnnkit.training.loop import Callback, TrainingDiverged, TrainState, fit, steps_per_epoch
from cnnkit.training.optim import make_optimizer, make_scheduler
from cnnkit.training.progress import Reporter


@dataclass
class TrainResult:
    """What a finished (or interrupted) run produced."""

    run_dir: Path
    history: list[dict[str, Any]]  # the metrics.jsonl records
    runtime: str  # device and precision, in words
    stop_reason: str  # "" when all epochs ran, "interrupted" after Ctrl-C
    model: torch.nn.Module
    run: Run  # the run directory, opened (with the network for a run of your own nn.Module): cnnkit.evaluate(run)

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


class Checkpointer(Callback):
    """Writes the checkpoint, the weights and the metrics after every epoch, and on Ctrl-C."""

    def __init__(self, run: Run, saved_epoch: int | None = None) -> None:
        self.run = run
        self.saved_epoch = saved_epoch  # the epoch of the last checkpoint written (None: none yet)

    def save(self, state: TrainState) -> None:
        payload = {
            "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "epoch": state.epoch, "batch": state.batch,
            "loss_sum": state.loss_sum, "plain_loss_sum": state.plain_loss_sum, "correct": state.correct, "seen": state.seen, "elapsed": state.elapsed,
            "history": state.history, "torch_rng": torch.get_rng_state(), "steps_per_epoch": state.steps_per_epoch,
        }
        try:  # the checkpoint last: it commits the epoch, so the weights on disk are never older than it says
            self.run.write_history(state.history)
            self.run.save_weights(state.model)
            self.run.save_checkpoint(payload)
        except OSError as error:  # disk full, permissions: the earlier checkpoint is still whole (atomic writes)
            last = (f"the checkpoint after epoch {self.saved_epoch} is intact: free space and continue with "
                    f"`cnnkit train --resume {self.run.folder}`" if self.saved_epoch is not None
                    else "no checkpoint was written yet")
            reason = error.strerror or str(error)
            failure = OSError(f"{self.run.folder}: cannot write the checkpoint at epoch {state.epoch}, batch "
                              f"{state.batch} ({reason}); {last}")
            failure.errno = error.errno  # still ENOSPC for a caller that checks
            raise failure from None
        self.saved_epoch = state.epoch

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        self.save(state)

    def on_interrupt(self, state: TrainState) -> None:
        # after a non-finite loss the last epoch's checkpoint is the last good one: keep it; and a state torn by
        # an interrupt inside a step is not a checkpoint either
        if state.stop_reason == "interrupted" and not state.torn:
            self.save(state)


def new_state(model: torch.nn.Module, config: TrainConfig, runtime: Runtime, train_size: int,
              place: Distributed = SINGLE) -> TrainState:
    """Optimizer and schedule of ``config`` for a fresh run over ``train_size`` images (split across processes)."""
    steps = steps_per_epoch(train_size, config.batch_size, place)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config.lr_schedule(), steps)
    return TrainState(model, optimizer, scheduler, config.loop_options(), runtime, steps, place=place)


def _default_run_dir(config: TrainConfig) -> Path:
    model = Path(config.model).stem if config.model.endswith(".txt") else config.model
    data = config.data.split(":", 1)[0]
    return Path("runs") / f"{model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def _transform(config: TrainConfig, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> BatchTransform:
    """Normalisation by the training set's statistics (None: none), plus the augmentations in ``config.augment``."""
    chosen = set(config.augment)
    return BatchTransform(mean=mean, std=std, crop_padding=2 if "crop" in chosen else 0,
                          hflip=0.5 if "flip" in chosen else 0.0, erase=0.5 if "erase" in chosen else 0.0,
                          noise_std=0.1 if "noise" in chosen else 0.0)


def train(config: TrainConfig | None = None, *, quiet: bool = False, callbacks: Sequence[Callback] = (),
          **options: Any) -> TrainResult:
    """Train ``config.model`` on ``config.data``; everything lands in the run directory.

    Give a :class:`TrainConfig` or its fields as keywords:
    ``train(model="lenet5", data="fashion-mnist", epochs=3)``. ``model`` may
    also be your own ``nn.Module``, and ``data`` your own images and labels:
    ``(x, y)`` tensors or NumPy arrays, or a ``Dataset`` of ``(image, target)``
    pairs, with ``test=`` the same kinds and ``class_names=`` their names
    (:mod:`cnnkit.training.given`); ``result.run`` then opens the run with that
    network for ``cnnkit.evaluate``. ``callbacks``
    (:class:`~cnnkit.training.Callback` objects) are called by the loop beside
    cnnkit's own checkpointing and progress display, e.g. to log to another
    tool or stop early (raise ``KeyboardInterrupt`` from ``on_epoch_end``).

    The run directory is created only once the data and the network are ready,
    and removed again if the run fails before its first epoch completes, so a
    bad input never leaves a half-written run behind.

    Started by torchrun, every process runs this; they train together
    (:mod:`cnnkit.training.distributed`) and rank 0 alone writes the run directory.
    """
    given = Given.take(options)
    if config is None:
        config = TrainConfig.from_dict(options)
    elif options:
        raise TypeError(f"train: give a TrainConfig or keyword options, not both. Received: {sorted(options)}")
    config.validate()
    place, runtime = place_and_runtime(config)
    with distributed.process_group(place), _threads(config.threads):
        return _train(config, runtime, place, quiet, callbacks, given)


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """PyTorch's CPU threads set to ``count`` (--threads) while training, and put back after."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def place_and_runtime(config: TrainConfig) -> tuple[Distributed, Runtime]:
    """This process's rank (torchrun) and runtime; joins the process group when there are several processes."""
    place = distributed.from_environment()
    distributed.local_batch_size(config.batch_size, place)  # an uneven split fails before any process group exists
    runtime = choose(config.device, config.precision, config.channels_last)
    if runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has the same shape: pick the fastest kernels once
    return place, replace(runtime, device=distributed.setup(place, runtime.device))


def _to_device(model: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    model = model.to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def _build(source: dict[str, Any], shape: tuple[int, int, int], config: TrainConfig) -> torch.nn.Module:
    """The run's network for the data's images; a zoo model too small or too large for them says what to do."""
    try:
        return build_checked(source, shape, f"--model {config.model}")
    except TooLarge:
        raise
    except ValueError as error:
        if source.get("kind") != "zoo":
            raise
        from cnnkit import models

        default = models.info(source["name"]).input_shape
        if tuple(shape) == tuple(default):  # the images are the size it was made for: the error is another one
            raise
        size = "x".join(map(str, shape))
        raise ValueError(f"--model {config.model} (made for {'x'.join(map(str, default))} images) cannot take the "
                         f"{size} images of {config.data}: {error}. Resize them with --image-size {default[1]}, or "
                         f"use a layer table made for {shape[1]}x{shape[2]} images (--model my_net.txt)") from None


@dataclass
class Prepared:
    """What training starts from: the task, the data, the network (on the device, seeded) and the batch transform."""

    task: Task
    splits: DataSplits
    source: dict[str, Any]  # how the network is rebuilt (the model card's `source`)
    model: torch.nn.Module
    transform: BatchTransform
    started_from: str | None = None  # where weights not the run's own came from (a backbone run), for the log
    adapted: str | None = None  # a layer table built for another input than its `input` line: what changed


def prepare(config: TrainConfig, runtime: Runtime, given: Given = NOTHING_GIVEN) -> Prepared:
    """``config``'s task, data, network and transform, as ``cnnkit train`` and ``cnnkit lr-find`` start from them
    (``given``: the caller's own network or data in place of ``config``'s names)."""
    task = make_task(config.task, config.noise, tta=config.tta)
    with phase("data"):
        splits = given.splits(config, task) if given.data is not None else config.data_spec().load()
        train_set = splits.train
        task.check(train_set)  # a dataset without what the task learns fails here, before the run exists
        mean, std = channel_stats(train_set.images) if task.normalises else (None, None)
    shape = train_set.input_shape
    started = None  # where weights not the run's own came from (backbone=RUN_DIR)
    adapted = None  # what building a layer table for these images changed
    with phase("network"):
        if given.module is not None:  # trained from its own initial weights, as the caller made it
            source = network.module_source(given.module)
            model = _to_device(given.module, runtime)
            check_module(model, shape, task.output_shape(shape, train_set.num_classes), runtime.device)
        else:
            source = network.describe(config.model, shape, train_set.num_classes, task, config.model_options)
            adapted = network.table_input_change(config.model, shape, config.data) if source["kind"] == "table" else None
            torch.manual_seed(config.seed)
            model = _to_device(_build(source, shape, config), runtime)
            started = network.load_backbone(model, source)  # backbone=RUN_DIR: that run's trained weights
    return Prepared(task, splits, source, model, _transform(config, mean, std), started, adapted)


def _train(config: TrainConfig, runtime: Runtime, place: Distributed, quiet: bool,
           callbacks: Sequence[Callback], given: Given) -> TrainResult:
    ready = prepare(config, runtime, given)
    task, splits, source, model, transform = ready.task, ready.splits, ready.source, ready.model, ready.transform
    spec, train_set = (None if given.data is not None else config.data_spec()), splits.train
    shape = train_set.input_shape
    folder = Path(config.out) if config.out else Path(distributed.broadcast_text(str(_default_run_dir(config)), place))
    card = ModelCard(config.task, source, shape, train_set.class_names, transform.to_dict(), spec, config.noise,
                     eval_split=splits.eval_split or "", skipped_files=tuple(splits.skipped),
                     image={"fit": train_set.fit, "interpolation": "bilinear"})
    leftover = check_out_folder(folder)
    if leftover and not quiet:
        print(leftover)
    for message in (ready.started_from, ready.adapted):
        if message and not quiet and place.is_main:
            print(message)
    distributed.barrier(place)  # every process has checked the folder before rank 0 fills it
    module = model if given.module is not None else None
    if not place.is_main:  # the other processes train alongside rank 0 and write nothing
        state = new_state(model, config, runtime, len(train_set), place)
        return _fit(Run(folder, card, module), state, train_set, splits.evaluation, task, config, True, callbacks)
    with Run.create(folder, card, config.to_dict()) as run:
        from cnnkit.summarize import summary

        run.module = module
        if given.data is not None and splits.evaluation is not None:
            run.save_held_out(splits.evaluation)  # evaluate and the report read it from the run: no name loads it

        with phase("summary"):
            described = summary(model, shape, name=card.name)
            described.notes[:0] = [ready.adapted] if ready.adapted else []
            run.write_text(SUMMARY, described.to_text())
        with phase("optimizer"):  # the optimizer and its schedule (no torch._dynamo import: training.optim)
            state = new_state(model, config, runtime, len(train_set), place)
        return _fit(run, state, train_set, splits.evaluation, task, config, quiet, callbacks)


def resume(run: str | Path, epochs: int | None = None, *, quiet: bool = False,
           callbacks: Sequence[Callback] = (), **given: Any) -> TrainResult:
    """Continue a run from its checkpoint, up to ``epochs`` in total (default: its configured epochs).

    A run of your own network or data (``train(model=module, data=(x, y))``) continues with the same given
    again: ``resume(run, model=MyNet(), data=(x, y), test=...)``; the run keeps only its held-out split.
    """
    unknown = sorted(set(given) - {"model", "data", "test", "class_names"})
    if unknown:
        raise TypeError(f"resume: unknown options {unknown}; the run's own configuration is used")
    taken = Given.take(dict(given))
    opened = Run.open(run, model=taken.module)
    if opened.card.data is None and taken.data is None:
        raise ValueError(f"{run} was trained on data given from Python, which a run does not keep (only its held-out "
                         f"split); continue it from Python with the same data: cnnkit.training.resume({str(run)!r}, "
                         f"data=(x, y), test=(x_test, y_test){', model=...' if taken.module is None and opened.card.source.get('kind') == 'module' else ''})")
    if opened.card.source.get("kind") == "transfer":
        raise ValueError(f"{run} was trained by `cnnkit transfer`, whose phases (frozen layers, head first) "
                         f"`--resume` cannot continue; run `cnnkit transfer` again with more --epochs")
    values = opened.config()
    checkpoint = opened.load_checkpoint()
    planned, schedule = values.get("epochs"), values.get("schedule", "onecycle")
    if epochs is not None and isinstance(planned, int) and epochs > planned and schedule in ("onecycle", "cosine"):
        raise ValueError(
            f"{run} was planned for {planned} epochs on a {schedule} schedule, whose learning rate falls to almost 0 "
            f"at epoch {planned}; a longer run would have had a different rate from its first step, so --epochs "
            f"{epochs} cannot continue it as if it had been planned that way. Either finish it as planned (`cnnkit "
            f"train --resume {run}`), or train a new run with --epochs {epochs}. (Runs with --schedule constant or "
            f"step do extend exactly.)")
    if epochs is not None:
        values["epochs"] = epochs
    try:
        config = TrainConfig.from_dict(values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{opened.folder / CONFIG}: {error}") from None
    if checkpoint["epoch"] > config.epochs or (checkpoint["epoch"] == config.epochs and checkpoint["batch"] == 0):
        more = ("give --epochs above that to continue" if config.schedule not in ("onecycle", "cosine") else
                f"its {config.schedule} schedule is complete, so train a new run with more --epochs")
        raise ValueError(f"{run} has already trained {checkpoint['epoch']} epochs; {more}")
    place, runtime = place_and_runtime(config)
    with distributed.process_group(place), _threads(config.threads):
        return _resume(opened, config, checkpoint, runtime, place, quiet, callbacks, taken)


def _resume(run: Run, config: TrainConfig, checkpoint: dict[str, Any], runtime: Runtime, place: Distributed,
            quiet: bool, callbacks: Sequence[Callback], given: Given) -> TrainResult:
    task = make_task(config.task, config.noise, tta=config.tta)
    splits = given.splits(config, task) if given.data is not None else run.data().load()
    if splits.train.input_shape != run.card.input_shape or (
            task.needs_classes and splits.train.class_names != run.card.class_names):
        raise ValueError(f"{run.folder}: the data given has {list(splits.train.input_shape)} images of classes "
                         f"{list(splits.train.class_names)[:4]}, the run was trained on {list(run.card.input_shape)} "
                         f"and {list(run.card.class_names)[:4]}")
    model = run.fresh_network()
    run.restore(model, checkpoint["model"])
    model = _to_device(model, runtime)
    state = new_state(model, config, runtime, len(splits.train), place)
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    # the epoch's running sums in the checkpoint are rank 0's: the other processes start theirs afresh
    for key in ("epoch", "batch", "elapsed", "history", *(("loss_sum", "correct", "seen") if place.is_main else ())):
        setattr(state, key, checkpoint[key])
    if place.is_main:
        state.plain_loss_sum = float(checkpoint.get("plain_loss_sum", 0.0))  # not in checkpoints before it existed
    torch.set_rng_state(checkpoint["torch_rng"])
    if place.is_main:
        run.write_config(config.to_dict())
    return _fit(run, state, splits.train, splits.evaluation, task, config, quiet or not place.is_main, callbacks)


def _fit(run: Run, state: TrainState, train_set: ImageDataset, evaluation: ImageDataset | None, task: Task,
         config: TrainConfig, quiet: bool, callbacks: Sequence[Callback]) -> TrainResult:
    device = state.runtime.device
    # the DDP wrapper averages gradients across processes; torch.compile traces the step's network once
    state.engine = distributed.wrap(state.model, state.place, device)
    if config.compile:
        state.engine = torch.compile(state.engine)  # type: ignore[assignment]
    # the whole dataset lives on the training device (GPU memory on CUDA): batches are gathered there
    train_data = (train_set.images.to(device), task.targets(train_set).to(device))
    eval_data = None if evaluation is None else (evaluation.images.to(device), task.targets(evaluation).to(device))
    reporter = Reporter(config.epochs, state.steps_per_epoch, config.batch_size,
                        stream=None if quiet else sys.stdout, metric=task.metric)
    card = run.card
    if not quiet:
        data = "data given from Python" if card.data is None else config.data
        print(f"training {card.name} on {data}: {len(train_data[1]):,} images, "
              f"{task.describe(len(card.class_names))}, {state.runtime.describe()}, batch {config.batch_size}, "
              f"{config.optimizer} at {config.learning_rate:g} ({config.schedule}) -> {run.folder}")
        skipped = card.skipped_files
        if skipped:
            print(f"left out {len(skipped)} file(s) that are not readable images: {'; '.join(skipped[:3])}"
                  f"{' ...' if len(skipped) > 3 else ''}")
    saved = state.epoch if state.history else None  # a resumed run has its checkpoint
    checkpointer = Checkpointer(run, saved)
    # early stopping first: it notes the best epoch in the record before the checkpointer writes it; every process
    # runs it (the records agree across processes), so all of them stop after the same epoch
    early = EarlyStopping(f"{card.eval_split or 'test'}_{task.metric}", config.early_stop) if config.early_stop \
        else None
    own: list[Callback] = [*([early] if early else []), *([checkpointer, reporter] if state.place.is_main else [])]
    try:
        with phase("training"):
            fit(state, train_data, eval_data, card.batch_transform(), task, eval_split=card.eval_split or "test",
                callbacks=[*own, *callbacks])
    except TrainingDiverged as error:  # say what is on disk now, not what might be
        kept = (f"The run keeps its checkpoint and weights of epoch {checkpointer.saved_epoch}, the last finite "
                f"ones (`cnnkit evaluate {run.folder}` uses them)." if checkpointer.saved_epoch is not None
                else f"No epoch had finished, so nothing is kept (what the run wrote in {run.folder} is removed).")
        raise TrainingDiverged(f"{error} {kept}") from None
    if early is not None and early.best_state is not None and state.place.is_main:
        run.save_weights(state.model)  # the best epoch's weights, restored by early stopping at the end
        if not quiet and early.stopped_at is not None:
            print(f"stopped early after epoch {early.stopped_at}: no better {early.key} for {early.patience} "
                  f"evaluation(s); model.safetensors holds epoch {early.best_epoch} ({early.key} {early.best:.4g})")
    return TrainResult(run.folder, state.history, state.runtime.describe(), state.stop_reason, state.model, run)


__all__ = ["Checkpointer", "TrainResult", "new_state", "resume", "train"]
