"""Progress of a run: a rich progress bar on a terminal; otherwise (CI, logs, notebooks) one plain line per epoch,
and a line at least every :data:`HEARTBEAT_S` seconds within an epoch, so that no minute passes in silence."""

from __future__ import annotations

import time
from typing import Any, TextIO

from cnnkit.training.loop import Callback, TrainState

HEARTBEAT_S = 10.0  # the longest a run stays silent when not on a terminal

# how each task's metrics read in a progress line: name -> (label, format of the value)
METRIC_FORMATS: dict[str, tuple[str, str]] = {
    "accuracy": ("acc", "{:.2%}"), "pixel_accuracy": ("pixel acc", "{:.2%}"), "mean_iou": ("mIoU", "{:.4f}"),
    "psnr": ("PSNR", "{:.2f} dB"), "localization_accuracy": ("loc acc", "{:.2%}"),
    "f1": ("F1", "{:.4f}"), "map": ("mAP", "{:.4f}"), "map50": ("AP50", "{:.4f}"), "box_map": ("box mAP", "{:.4f}"),
    "mask_map": ("mask mAP", "{:.4f}"), "mask_map50": ("mask AP50", "{:.4f}"),
}


def _metrics(record: dict[str, Any], split: str) -> str:
    """``loss 0.4567 acc 83.40%``: a split's loss and whichever metrics the record has for it."""
    parts = [f"loss {record[f'{split}_loss']:.4f}"]
    for name, (label, form) in METRIC_FORMATS.items():
        if f"{split}_{name}" in record:
            parts.append(f"{label} {form.format(record[f'{split}_{name}'])}")
    return " ".join(parts)


def format_record(record: dict[str, Any], epochs: int) -> str:
    """``epoch 1/3  train loss 0.6123 acc 77.12%  test loss 0.4567 acc 83.40%  lr 0.001  12.3 s``."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"train {_metrics(record, 'train')}"]
    for split in ("val", "test"):
        if f"{split}_loss" in record:
            parts.append(f"{split} {_metrics(record, split)}")
    parts += [f"lr {record['lr']:.3g}", f"{record['time']:.1f} s"]
    if "images_per_second" in record:
        parts.append(f"{record['images_per_second']:,.0f} img/s")
    return "  ".join(parts)


class Reporter(Callback):
    """A callback for :func:`cnnkit.training.loop.fit` that shows progress on ``stream`` (None: silent)."""

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, stream: TextIO | None,
                 metric: str = "accuracy") -> None:
        self.epochs, self.steps, self.batch_size, self.stream = epochs, steps_per_epoch, batch_size, stream
        self.metric = metric  # the task's running training metric
        self.progress: Any = None
        self.task: Any = None
        self.epoch_started = 0.0
        self.epoch_images = 0
        self.last_line = 0.0  # when the last plain line was printed

    def on_fit_start(self, state: TrainState) -> None:
        self.epoch_started = self.last_line = time.perf_counter()
        self.epoch_images = 0
        if self.stream is not None and self.stream.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), transient=True)
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.steps, completed=state.batch,
                                               epoch=f"{state.epoch + 1}/{self.epochs}", stats="")

    def _running(self, state: TrainState) -> str:
        """The epoch so far: ``loss 0.5 acc 81.20% 5,000 img/s``."""
        rate = self.epoch_images / max(time.perf_counter() - self.epoch_started, 1e-9)
        running = {"train_loss": state.loss_sum / max(state.seen, 1),
                   f"train_{self.metric}": state.correct / max(state.seen, 1)}
        return f"{_metrics(running, 'train')} {rate:,.0f} img/s"

    def on_batch_end(self, state: TrainState) -> None:
        self.epoch_images += self.batch_size
        if self.progress is not None and (state.batch % 10 == 0 or state.batch == self.steps):
            self.progress.update(self.task, completed=state.batch, stats=self._running(state))
        elif self.progress is None and self.stream is not None and state.batch < self.steps:
            now = time.perf_counter()
            if now - self.last_line >= HEARTBEAT_S:  # a log has no bar: say where the epoch is
                left = (self.steps - state.batch) * (now - self.epoch_started) / max(state.batch, 1)
                print(f"epoch {state.epoch + 1}/{self.epochs}  batch {state.batch}/{self.steps}  "
                      f"train {self._running(state)}  about {left:.0f} s left in the epoch", file=self.stream,
                      flush=True)
                self.last_line = now

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        if self.stream is not None:
            line = format_record(record, self.epochs)
            if self.progress is not None:
                self.progress.console.print(line)
                if state.epoch < self.epochs:  # no "epoch 4/3" bar after the last epoch
                    self.progress.reset(self.task, total=self.steps, epoch=f"{state.epoch + 1}/{self.epochs}", stats="")
            else:
                print(line, file=self.stream, flush=True)
        self.epoch_started = self.last_line = time.perf_counter()
        self.epoch_images = 0

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_fit_end(self, state: TrainState) -> None:
        self._stop()

    def on_interrupt(self, state: TrainState) -> None:
        self._stop()
        if self.stream is not None and state.stop_reason == "interrupted":
            saved = ("the last whole checkpoint is kept (stopped inside a step)" if state.torn else
                     "checkpoint saved")
            print(f"interrupted at epoch {state.epoch + 1}, batch {state.batch}: {saved}", file=self.stream)
