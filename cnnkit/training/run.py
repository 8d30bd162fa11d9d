"""``train(config)`` and ``resume(run)``: data, network, run directory and the fit loop, end to end."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from cnnkit.data import BatchTransform, channel_stats
from cnnkit.training import distributed, network, rundir
from cnnkit.training.config import TrainConfig
from cnnkit.training.distributed import Distributed
from cnnkit.training.hardware import Runtime, choose
from cnnkit.training.loop import TrainState, fit, new_state
from cnnkit.training.progress import Reporter
from cnnkit.training.tasks import make_task


@dataclass
class TrainResult:
    """What a finished (or interrupted) run produced."""

    run_dir: Path
    history: list[dict[str, Any]]  # the metrics.jsonl records
    runtime: str  # device and precision, in words
    stop_reason: str  # "" when all epochs ran, "interrupted" after Ctrl-C
    model: torch.nn.Module

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


class Checkpointer:
    """Writes the checkpoint, the weights and the metrics after every epoch, and on Ctrl-C."""

    def __init__(self, run: Path) -> None:
        self.run = run

    def save(self, state: TrainState) -> None:
        payload = {
            "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "epoch": state.epoch, "batch": state.batch,
            "loss_sum": state.loss_sum, "correct": state.correct, "seen": state.seen, "elapsed": state.elapsed,
            "history": state.history, "torch_rng": torch.get_rng_state(),
        }
        rundir.save_checkpoint(self.run, payload)
        rundir.save_weights(self.run / "model.safetensors", state.model)
        rundir.write_metrics(self.run, state.history)

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        self.save(state)

    def on_interrupt(self, state: TrainState) -> None:
        # after a non-finite loss the last epoch's checkpoint is the last good one: keep it
        if state.stop_reason == "interrupted":
            self.save(state)


def _default_run_dir(config: TrainConfig) -> Path:
    model = Path(config.model).stem if config.model.endswith(".txt") else config.model
    data = config.data.split(":", 1)[0]
    return Path("runs") / f"{model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def _load_data(config: TrainConfig) -> tuple[Any, Any, str]:
    from cnnkit import data

    splits = data.load(config.data, data_dir=config.data_dir, image_size=config.image_size,
                       grayscale=config.grayscale, val_split=config.val_split, seed=config.seed,
                       skip_bad_images=config.skip_bad_images, classes=config.classes,
                       train_per_class=config.train_per_class)
    if config.val_split > 0:
        return splits, splits.val, "val"
    return splits, splits.test, "test" if splits.test is not None else ""


def _transform(config: TrainConfig, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> BatchTransform:
    """Normalisation by the training set's statistics (None: none), plus the augmentations in ``config.augment``."""
    chosen = set(config.augment)
    return BatchTransform(mean=mean, std=std, crop_padding=2 if "crop" in chosen else 0,
                          hflip=0.5 if "flip" in chosen else 0.0, erase=0.5 if "erase" in chosen else 0.0,
                          noise_std=0.1 if "noise" in chosen else 0.0)


def train(config: TrainConfig | None = None, *, quiet: bool = False, **options: Any) -> TrainResult:
    """Train ``config.model`` on ``config.data``; everything lands in the run directory.

    Give a :class:`TrainConfig` or its fields as keywords:
    ``train(model="lenet5", data="fashion-mnist", epochs=3)``.

    The run directory is created only once the data and the network are ready,
    and removed again if the run fails before its first epoch completes, so a
    bad input never leaves a half-written run behind.

    Started by torchrun, every process runs this; they train together
    (:mod:`cnnkit.training.distributed`) and rank 0 alone writes the run directory.
    """
    if config is None:
        config = TrainConfig.from_dict(options)
    elif options:
        raise TypeError(f"train: give a TrainConfig or keyword options, not both. Received: {sorted(options)}")
    config.validate()
    place, runtime = _start(config)
    with distributed.process_group(place):
        return _train(config, runtime, place, quiet)


def _start(config: TrainConfig) -> tuple[Distributed, Runtime]:
    """This process's rank (torchrun) and runtime; joins the process group when there are several processes."""
    place = distributed.from_environment()
    distributed.local_batch_size(config.batch_size, place)  # an uneven split fails before any process group exists
    runtime = choose(config.device, config.precision, config.channels_last)
    if runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has the same shape: pick the fastest kernels once
    return place, replace(runtime, device=distributed.setup(place, runtime.device))


def _train(config: TrainConfig, runtime: Runtime, place: Distributed, quiet: bool) -> TrainResult:
    task = make_task(config.task, config.noise, tta=config.tta)
    splits, evaluation, eval_split = _load_data(config)
    train_set = splits.train
    task.targets(train_set)  # a dataset without what the task learns fails here, before the run directory exists
    shape = tuple(train_set.images.shape[1:])
    source = network.describe(config.model, shape, len(train_set.class_names), config.task, config.model_options)
    torch.manual_seed(config.seed)
    model = network.build(source, shape).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    mean, std = channel_stats(train_set.images)
    transform = _transform(config, mean, std) if task.normalises else _transform(config, None, None)
    run = Path(config.out) if config.out else Path(distributed.broadcast_text(str(_default_run_dir(config)), place))
    if run.exists() and any(run.iterdir()):
        raise ValueError(f"--out {run}: the directory exists and is not empty; choose another, or continue it with "
                         f"`cnnkit train --resume {run}`")
    distributed.barrier(place)  # every process has checked the folder before rank 0 fills it
    meta = {"task": config.task, "noise": config.noise, "source": source, "input_shape": list(shape),
            "class_names": list(train_set.class_names),
            "mean": list(mean), "std": list(std), "transform": transform.to_dict(), "data": config.data,
            "eval_split": eval_split, "skipped_files": list(splits.skipped)}
    if not place.is_main:  # the other processes train alongside rank 0 and write nothing
        state = new_state(model, config, runtime, len(train_set), place)
        return _fit(run, state, train_set, evaluation, meta, config, True)
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    try:
        rundir.write_json(run / "config.json", config.to_dict())
        rundir.write_json(run / "model.json", meta)
        from cnnkit.summarize import summary

        text = summary(model, shape, name=source["name"]).to_text()
        rundir.atomic_write(run / "summary.txt", text.encode())
        state = new_state(model, config, runtime, len(train_set), place)
        return _fit(run, state, train_set, evaluation, meta, config, quiet)
    except BaseException:
        if not (run / rundir.CHECKPOINT).exists():
            _remove_partial_run(run, created)
        raise


def _remove_partial_run(run: Path, created: bool) -> None:
    """Undo a run that failed before its first checkpoint: the folder if cnnkit made it, else only its files."""
    if created:
        shutil.rmtree(run, ignore_errors=True)
        return
    for path in run.iterdir():
        if path.is_file():
            path.unlink()


def resume(run: str | Path, epochs: int | None = None, *, quiet: bool = False) -> TrainResult:
    """Continue a run from its checkpoint, up to ``epochs`` in total (default: its configured epochs)."""
    run = Path(run)
    meta = rundir.read_json(run / "model.json")
    if meta.get("source", {}).get("kind") == "transfer":
        raise ValueError(f"{run} was trained by `cnnkit transfer`, whose phases (frozen layers, head first) "
                         f"`--resume` cannot continue; run `cnnkit transfer` again with more --epochs")
    values = rundir.read_json(run / "config.json")
    checkpoint = rundir.load_checkpoint(run)
    if epochs is not None:
        values["epochs"] = epochs
    config = TrainConfig.from_dict(values)
    if checkpoint["epoch"] > config.epochs or (checkpoint["epoch"] == config.epochs and checkpoint["batch"] == 0):
        raise ValueError(f"{run} has already trained {checkpoint['epoch']} epochs; give --epochs above that to continue")
    place, runtime = _start(config)
    with distributed.process_group(place):
        return _resume(run, config, checkpoint, meta, runtime, place, quiet)


def _resume(run: Path, config: TrainConfig, checkpoint: dict[str, Any], meta: dict[str, Any], runtime: Runtime,
            place: Distributed, quiet: bool) -> TrainResult:
    splits, evaluation, _ = _load_data(config)
    shape = tuple(meta["input_shape"])
    model = network.build(meta["source"], shape)
    rundir.restore_model(run, model, checkpoint["model"])
    model = model.to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    state = new_state(model, config, runtime, len(splits.train), place)
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    # the epoch's running sums in the checkpoint are rank 0's: the other processes start theirs afresh
    for key in ("epoch", "batch", "elapsed", "history", *(("loss_sum", "correct", "seen") if place.is_main else ())):
        setattr(state, key, checkpoint[key])
    torch.set_rng_state(checkpoint["torch_rng"])
    if place.is_main:
        rundir.write_json(run / "config.json", config.to_dict())
    return _fit(run, state, splits.train, evaluation, meta, config, quiet or not place.is_main)


def _fit(run: Path, state: TrainState, train_set: Any, evaluation: Any, meta: dict[str, Any],
         config: TrainConfig, quiet: bool) -> TrainResult:
    device = state.runtime.device
    task = make_task(config.task, config.noise, tta=config.tta)
    # the DDP wrapper averages gradients across processes; torch.compile traces the step's network once
    state.engine = distributed.wrap(state.model, state.place, device)
    if config.compile:
        state.engine = torch.compile(state.engine)  # type: ignore[assignment]
    # the whole dataset lives on the training device (GPU memory on CUDA): batches are gathered there
    train_data = (train_set.images.to(device), task.targets(train_set).to(device))
    eval_data = None if evaluation is None else (evaluation.images.to(device), task.targets(evaluation).to(device))
    reporter = Reporter(config.epochs, state.steps_per_epoch, config.batch_size,
                        stream=None if quiet else sys.stdout, metric=task.metric)
    if not quiet:
        what = f"{len(meta['class_names'])} classes" if task.name in ("classify", "segment") else f"task {task}"
        print(f"training {meta['source']['name']} on {config.data}: {len(train_data[1]):,} images, "
              f"{what}, {state.runtime.describe()} -> {run}")
        skipped = meta.get("skipped_files", [])
        if skipped:
            print(f"skipped {len(skipped)} unreadable image file(s) (--skip-bad-images): {'; '.join(skipped[:3])}"
                  f"{' ...' if len(skipped) > 3 else ''}")
    transform = BatchTransform.from_dict(meta["transform"])
    callbacks = [Checkpointer(run), reporter] if state.place.is_main else []
    fit(state, train_data, eval_data, transform, eval_split=meta["eval_split"] or "test", callbacks=callbacks,
        task=task)
    return TrainResult(run, state.history, state.runtime.describe(), state.stop_reason, state.model)


__all__ = ["TrainResult", "resume", "train"]
