"""Training that diverges, and a run killed before its first checkpoint: what is on disk is what the message says.

A finite loss can come with an update that overflows every weight (``--lr 1e300`` on one batch per epoch): the
weights are checked, not only the loss, before anything is saved; no command prints NaN as JSON.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cnnkit.cli import main
from cnnkit.training import Callback, TrainState
from tests.conftest import DIGITS_CLASSES, TrainedRun

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")


def _train(table: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(table), "--data", "digits", "--classes", DIGITS_CLASSES, "--out", str(out),
            "--precision", "fp32", "--no-report", *extra]


def test_an_update_that_overflows_the_weights_keeps_nothing_and_says_so(
        digits_net: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One batch per epoch: epoch 1's loss is finite, its update makes every weight infinite."""
    out = tmp_path / "run"
    words = _train(digits_net, out, "--optimizer", "sgd", "--lr", "1e300", "--schedule", "constant",
                   "--batch-size", "1000", "--epochs", "2")
    assert main(words) == 2
    err = capsys.readouterr().err
    assert "the weights became NaN or infinite during epoch 1" in err and "the loss was finite" in err
    assert "No epoch had finished, so nothing is kept" in err and "are kept" not in err
    assert not out.exists()


class _Overflow(Callback):
    """After the first epoch is saved, set the learning rate so high that the next update overflows."""

    def on_epoch_end(self, state: TrainState, record: dict[str, object]) -> None:
        for group in state.optimizer.param_groups:
            group["lr"] = 1e300


def test_a_later_divergence_keeps_the_last_finite_epoch(digits_net: Path, tmp_path: Path) -> None:
    from cnnkit.training import TrainingDiverged, train

    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"The run keeps its checkpoint and weights of epoch 1, the last finite"):
        train(model=str(digits_net), data="digits", classes=[DIGITS_CLASSES], epochs=3, batch_size=1000,
              optimizer="sgd", lr=0.01, schedule="constant", precision="fp32", out=str(out), quiet=True,
              callbacks=[_Overflow()])
    weights = load_file(out / "model.safetensors")
    assert all(bool(torch.isfinite(tensor).all()) for tensor in weights.values())
    assert [record["epoch"] for record in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())] == [1]
    assert main(["evaluate", str(out)]) == 0  # the kept epoch is usable


def test_non_finite_weights_on_disk_are_refused_not_predicted(digits_run: TrainedRun, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(digits_run.folder, run)
    weights = load_file(run / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, run / "model.safetensors")
    for command in (["evaluate", str(run)], ["predict", str(run), str(tmp_path / "x.png"), "--json"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"the weights hold NaN or infinity ({name})" in err, err


def test_json_output_is_json_even_with_nan(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.fileio import json_text

    text = json_text({"loss": float("nan"), "rows": [1.0, float("inf"), (float("-inf"), 2)]})
    assert json.loads(text) == {"loss": None, "rows": [1.0, None, [None, 2]]}


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again(digits_net: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """kill -9 before the first checkpoint leaves the card, config and summary: --resume says to start again with
    the same --out, and that --out accepts it."""
    out = tmp_path / "run"
    assert main(_train(digits_net, out, "--epochs", "1")) == 0
    for path in out.iterdir():  # what a run has before its first checkpoint: card, config, summary
        if path.name not in ("model.json", "config.json", "summary.txt"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    (out / ".model.json.abc.tmp").write_bytes(b"half a fi")  # a write cut short
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2
    assert f"there is nothing to resume; train it again with the same --out {out}" in capsys.readouterr().err
    assert main(_train(digits_net, out, "--epochs", "1")) == 0
    assert "stopped before its first checkpoint (nothing to resume): starting it again there" in capsys.readouterr().out
    assert (out / "checkpoint" / "state.pt").is_file() and not (out / ".model.json.abc.tmp").exists()
    (out / "notes.txt").write_text("mine")  # anything else in the folder: refused as before
    (out / "checkpoint" / "state.pt").unlink()
    assert main(_train(digits_net, out, "--epochs", "1")) == 2
    assert "the directory exists and is not empty" in capsys.readouterr().err
