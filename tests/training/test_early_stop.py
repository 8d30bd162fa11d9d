"""Early stopping: the run ends after N evaluations without a better validation score, and keeps the best epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.training import TrainConfig
from cnnkit.training.early_stop import EarlyStopping
from tests.conftest import DIGITS_CLASSES

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")


class _State:
    """What EarlyStopping reads of a TrainState."""

    def __init__(self, epochs: int) -> None:
        self.model = torch.nn.Linear(2, 1)
        self.epoch, self.stop_requested = 0, False
        self.options = type("Options", (), {"epochs": epochs})()
        self.history: list[dict[str, object]] = []


def test_it_stops_after_patience_evaluations_without_a_new_best_and_restores_the_best() -> None:
    state = _State(epochs=10)
    early = EarlyStopping("val_accuracy", patience=2)
    scores = [0.5, 0.7, 0.7, 0.65, 0.9]  # equal is not better: epochs 3 and 4 do not improve on epoch 2
    for epoch, score in enumerate(scores, start=1):
        state.epoch = epoch
        with torch.no_grad():
            state.model.weight.fill_(epoch)
        record = {"epoch": epoch, "val_accuracy": score}
        early.on_epoch_end(state, record)  # type: ignore[arg-type]
        if state.stop_requested:
            break
    assert (epoch, early.best_epoch, early.stopped_at) == (4, 2, 4)
    assert record == {"epoch": 4, "val_accuracy": 0.65, "best_epoch": 2, "epochs_without_improvement": 2,
                      "stopped_early": True}
    early.on_fit_end(state)  # type: ignore[arg-type]
    assert float(state.model.weight.detach()[0, 0]) == 2.0  # the weights of epoch 2


def test_early_stopping_needs_a_validation_split() -> None:
    with pytest.raises(ValueError, match=r"--early-stop watches a validation split: add --val-split"):
        TrainConfig(early_stop=2).validate()
    with pytest.raises(ValueError, match=r"--early-stop must be at least 1"):
        TrainConfig(early_stop=0, val_split=0.1).validate()


def test_a_run_that_stops_improving_ends_and_keeps_its_best_epoch(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A rate so small (and no BatchNorm statistics) that the validation score cannot move after epoch 1: the run
    ends after epoch 2 of 6; evaluate scores the kept weights as epoch 1 was scored."""
    table = tmp_path / "net.txt"
    table.write_text("input 1x8x8\nconv 8 3x3 padding=same\nrelu\nmaxpool 2\nflatten\ndense 5\n")
    out = tmp_path / "run"
    assert main(["train", "--model", str(table), "--data", "digits", "--classes", DIGITS_CLASSES, "--epochs",
                 "6", "--val-split", "0.2", "--early-stop", "1", "--optimizer", "sgd", "--lr", "1e-9", "--schedule",
                 "constant", "--precision", "fp32", "--out", str(out), "--no-report", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2] and history[-1]["stopped_early"] is True
    assert history[-1]["best_epoch"] == 1 and history[-1]["epochs_without_improvement"] == 1
    assert set(load_file(out / "model.safetensors")) == set(torch.load(out / "checkpoint" / "state.pt",
                                                                      weights_only=True)["model"])
    assert output["evaluation"]["split"] == "val"
    assert output["evaluation"]["accuracy"] == round(history[0]["val_accuracy"], 4)
    assert output["evaluation"]["loss"] == pytest.approx(history[0]["val_loss"], abs=1e-4)
