"""Early stopping: end a run once its validation score stops improving, and keep the best epoch's weights.

``--early-stop N`` watches the task's metric on the validation split (``val_accuracy``, ``val_psnr`` ...: higher is
better for every task). After N evaluations without a new best, the loop ends after that epoch as if it were the
last (:attr:`TrainState.stop_requested`); the best weights, kept on the CPU when they were reached, go back into
the network, so ``model.safetensors`` and every later ``evaluate``, ``predict`` and report use the best epoch.
The checkpoint stays the last epoch's, as training left it. Each record of ``metrics.jsonl`` says how it stands:
``best_epoch`` and ``epochs_without_improvement``.
"""

from __future__ import annotations

from typing import Any

import torch

from cnnkit.training.loop import Callback, TrainState


class EarlyStopping(Callback):
    """A :class:`~cnnkit.training.loop.Callback` that requests the end of a run after ``patience`` evaluations of
    ``key`` (e.g. ``"val_accuracy"``) without improvement, and restores the best weights when it ends."""

    def __init__(self, key: str, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1. Received: {patience}")
        self.key, self.patience = key, patience
        self.best: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.waited = 0
        self.stopped_at: int | None = None  # the epoch after which the run ended early

    def on_fit_start(self, state: TrainState) -> None:
        for record in state.history:  # a resumed run: what the earlier epochs reached (their weights are gone)
            self._score(record, None)

    def _score(self, record: dict[str, Any], state: TrainState | None) -> None:
        value = record.get(self.key)
        if not isinstance(value, int | float):
            return
        if self.best is None or value > self.best:
            self.best, self.best_epoch, self.waited = float(value), int(record["epoch"]), 0
            if state is not None:
                self.best_state = {name: tensor.detach().to("cpu", copy=True)
                                   for name, tensor in state.model.state_dict().items()}
        else:
            self.waited += 1

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        self._score(record, state)
        record["best_epoch"], record["epochs_without_improvement"] = self.best_epoch, self.waited
        if self.waited >= self.patience and state.epoch < state.options.epochs:
            state.stop_requested = True
            self.stopped_at = state.epoch
            record["stopped_early"] = True

    def on_fit_end(self, state: TrainState) -> None:
        if self.best_state is not None and self.best_epoch != state.epoch:
            state.model.load_state_dict(self.best_state)
