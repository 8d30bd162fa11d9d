"""Training end to end on real data (scikit-learn digits): run directory, exact resume, interruption, divergence."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.training import Callback, TrainConfig, TrainingDiverged, TrainState, resume, train

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")

# a small network for the 8x8 digits: fast enough for many runs per test session
TABLE = """\
input 1x8x8
conv 8 3x3 padding=same
relu
maxpool 2
conv 16 3x3 padding=same
relu
dropout 0.2
flatten
dense 10
"""


@pytest.fixture
def table(tmp_path: Path) -> str:
    path = tmp_path / "digits_net.txt"
    path.write_text(TABLE)
    return str(path)


def _config(table: str, out: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {"model": table, "data": "digits", "epochs": 3, "batch_size": 64, "out": str(out),
                              "precision": "fp32", "seed": 3, "augment": ["noise"]}
    values.update(overrides)
    return TrainConfig.from_dict(values)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_run_directory_has_every_file(table: str, tmp_path: Path) -> None:
    result = train(_config(table, tmp_path / "run"), quiet=True)
    run = result.run_dir
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "model.safetensors", "model.json",
                                               "summary.txt", "checkpoint"}
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert {"epoch", "train_loss", "train_accuracy", "lr", "time", "test_loss", "test_accuracy"} <= set(lines[0])
    assert lines[-1]["test_accuracy"] > 0.8  # digits are easy; a broken loop would sit near 0.1
    assert lines[0]["time"] < lines[1]["time"] < lines[2]["time"]
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert "Total params" in (run / "summary.txt").read_text()
    assert not list(run.rglob("*.tmp"))


def test_resume_is_exact(table: str, tmp_path: Path) -> None:
    # extending a finished run re-plans schedules that depend on the total; a constant rate does not
    straight = train(_config(table, tmp_path / "straight", schedule="constant"), quiet=True)
    train(_config(table, tmp_path / "split", epochs=1, schedule="constant"), quiet=True)
    resumed = resume(tmp_path / "split", epochs=3, quiet=True)
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]


class _StopAt(Callback):
    """Stops training after a given global step, as a user's callback may (raising KeyboardInterrupt)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, state: TrainState) -> None:
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(table: str, tmp_path: Path) -> None:
    straight = train(_config(table, tmp_path / "straight", epochs=2), quiet=True)
    stopped = train(_config(table, tmp_path / "stopped", epochs=2), quiet=True, callbacks=[_StopAt(30)])
    assert stopped.stop_reason == "interrupted"
    resumed = resume(tmp_path / "stopped", quiet=True)
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    for key in a:
        assert torch.equal(a[key], b[key]), key


class _Poison(Callback):
    """After epoch 1 is checkpointed, breaks the weights as an exploding gradient would."""

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        with torch.no_grad():
            next(state.model.parameters()).fill_(float("inf"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(table: str, tmp_path: Path) -> None:
    run = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"the training loss became nan at epoch 2, batch 1.*Try a smaller --lr"):
        train(_config(table, run, epochs=3), quiet=True, callbacks=[_Poison()])
    weights = _weights(run)
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    checkpoint = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 0)


def test_failures_before_training_leave_no_run_directory(table: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    bad_table = tmp_path / "bad.txt"
    bad_table.write_text("input 1x8x8\nconv 4 3x3\nflatten\ndense 7\n")
    cases = [
        (["--model", str(bad_table)], "the table ends in 7 outputs, but the data has 10 classes"),
        (["--model", table, "--epochs", "0"], "--epochs must be at least 1. Received: 0"),
        (["--model", table, "--lr", "-1"], "--lr must be positive"),
        (["--model", "lenet6"], "lenet5"),
        (["--model", table, "--augment", "rotate"], "unknown augmentation 'rotate'"),
    ]
    for args, message in cases:
        code = main(["train", "--data", "digits", "--out", str(out), *args])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert message in err and err.count("\n") == 1, (args, err)
        assert not out.exists(), args
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--optimizer", "sgdd"])
    assert exit_info.value.code == 2


def test_existing_run_directory_is_not_overwritten(table: str, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="the directory exists and is not empty"):
        train(_config(table, out), quiet=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_train_then_evaluate_json(table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["train", "--model", table, "--data", "digits", "--epochs", "2", "--out", str(out), "--json",
                 "--precision", "fp32", "--no-report"]) == 0
    data = json.loads(capsys.readouterr().out)
    evaluation = data["evaluation"]
    from cnnkit.data import load

    test_images = len(load("digits", seed=0).test.labels)  # type: ignore[union-attr]
    assert sum(map(sum, evaluation["confusion_matrix"])) == evaluation["count"] == test_images > 300
    assert {"accuracy", "top5_accuracy", "loss", "per_class", "confusion_matrix"} <= set(evaluation)
    assert {"class", "name", "precision", "recall", "f1", "support"} <= set(evaluation["per_class"][0])
    assert (out / "confusion_matrix.png").stat().st_size > 5000
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == evaluation["accuracy"]
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == evaluation["accuracy"]


def test_checkpoint_from_another_network_is_refused(table: str, tmp_path: Path) -> None:
    run = train(_config(table, tmp_path / "a", epochs=1, schedule="constant"), quiet=True).run_dir
    other = tmp_path / "other.txt"
    other.write_text(TABLE.replace("conv 16", "conv 12"))
    meta = json.loads((run / "model.json").read_text())
    from cnnkit import spec

    meta["source"]["text"] = spec.load(other).to_text()
    (run / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"the weights belong to another network \(different shapes"):
        resume(run, epochs=2, quiet=True)


def test_predict_with_a_trained_run(table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    from PIL import Image

    from cnnkit.data import load

    run = train(_config(table, tmp_path / "run", epochs=2), quiet=True).run_dir
    digits = load("digits", seed=0).test
    assert digits is not None
    files = []
    for i in range(8):  # the test images themselves, written as files a user would have
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(digits.images[i, 0].numpy()).resize((32, 32)).save(path)
        files.append(str(path))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["predict", str(run), *files, str(tmp_path / "broken.png"), "--top", "3", "--json"]) == 2
    captured = capsys.readouterr()
    predictions = json.loads(captured.out)["predictions"]
    assert len(predictions) == 9 and "broken.png" in predictions[-1]["error"]
    assert "broken.png" in captured.err
    top1 = [p["top"][0]["class"] for p in predictions[:8]]
    assert np.mean(np.array(top1) == digits.labels[:8].numpy()) >= 0.75  # resized back to 8x8: mostly right
    assert predictions[0]["top"][0]["name"] == digits.class_names[top1[0]]


def test_a_zoo_model_too_big_for_the_images_says_how_to_fit_them(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # both in the README: lenet5 is made for 32x32, the digits are 8x8
    assert main(["train", "--model", "lenet5", "--data", "digits", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--model lenet5 (made for 3x32x32 images) cannot take the 1x8x8 images of digits" in err
    assert "Resize them with --image-size 32, or use a layer table made for 8x8 images" in err
    assert not (tmp_path / "run").exists()
    # and the fix it names works
    assert main(["train", "--model", "lenet5", "--data", "digits", "--image-size", "32", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--no-evaluate", "--no-report", "--json"]) == 0


def test_resume_refuses_to_stretch_a_finished_one_cycle_and_extends_a_constant_rate(table: str, tmp_path: Path) -> None:
    train(_config(table, tmp_path / "cycle", epochs=1), quiet=True)
    with pytest.raises(ValueError, match=r"planned for 1 epochs on a onecycle schedule.*Either finish it as planned "
                                         r"\(`cnnkit train --resume .*`\), or train a new run with --epochs 2"):
        resume(tmp_path / "cycle", epochs=2, quiet=True)
    with pytest.raises(ValueError, match=r"has already trained 1 epochs; its onecycle schedule is complete, so train a "
                                         r"new run with more --epochs"):
        resume(tmp_path / "cycle", quiet=True)
    train(_config(table, tmp_path / "constant", epochs=1, schedule="constant"), quiet=True)
    with pytest.raises(ValueError, match=r"has already trained 1 epochs; give --epochs above that to continue"):
        resume(tmp_path / "constant", quiet=True)
    extended = resume(tmp_path / "constant", epochs=2, quiet=True)
    straight = train(_config(table, tmp_path / "straight", epochs=2, schedule="constant"), quiet=True)
    assert [r["train_loss"] for r in extended.history] == [r["train_loss"] for r in straight.history]


def test_a_log_hears_from_training_at_least_every_heartbeat(table: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.training import progress

    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)  # every batch is "10 s later"
    result = train(_config(table, tmp_path / "run", epochs=2), quiet=False)
    lines = capsys.readouterr().out.splitlines()
    steps = len([line for line in lines if line.startswith("epoch 1/2  batch ")]) + 1  # the last batch ends the epoch
    assert steps == -(-1437 // 64)  # 1,437 training digits in batches of 64
    heartbeat = next(line for line in lines if line.startswith("epoch 2/2  batch 5/"))
    assert re.fullmatch(rf"epoch 2/2  batch 5/{steps}  train loss \d\.\d{{4}} acc \d+\.\d\d% [\d,]+ img/s  about \d+ s "
                        r"left in the epoch", heartbeat), heartbeat
    assert [line.split("  ")[0] for line in lines if "  train loss" in line and "batch" not in line] == \
        ["epoch 1/2", "epoch 2/2"] and result.stop_reason == ""
    assert not any(line.startswith("epoch 3/2") for line in lines)


def test_threads_are_set_for_the_run_and_put_back(table: str, tmp_path: Path) -> None:
    seen: list[int] = []

    class Threads(Callback):
        def on_batch_end(self, state: TrainState) -> None:
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    train(_config(table, tmp_path / "run", epochs=1, threads=1), quiet=True, callbacks=[Threads()])
    assert set(seen) == {1} and torch.get_num_threads() == before
    with pytest.raises(ValueError, match=r"--threads must be at least 1. Received: 0"):
        TrainConfig.from_dict({"threads": 0})


def test_curves_compare_like_with_like_and_show_the_rate_of_every_step(table: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnkit.training.optim import lr_factor
    from cnnkit.visualize import curves

    config = _config(table, tmp_path / "run", epochs=2, label_smoothing=0.1, augment=[])
    result = train(config, quiet=True)
    first, last = result.history
    # with smoothing epsilon, the optimised loss is (1 - eps) * cross-entropy + eps * the mean over classes of -log p,
    # which is larger: the unsmoothed one, the held-out loss's own measure, is logged beside it
    assert 0 < last["train_loss_unsmoothed"] < last["train_loss"] and first["train_loss_unsmoothed"] < first["train_loss"]
    plain = train(_config(table, tmp_path / "plain", epochs=1, label_smoothing=0.0, augment=[]), quiet=True)
    assert "train_loss_unsmoothed" not in plain.history[0]  # nothing to add without smoothing
    # the learning rate of every 1/50 of an epoch, from the schedule's own rule
    steps = -(-1437 // 64)
    assert [x for x, _ in first["lr_steps"]] == [round(k / steps, 4) for k in range(steps)]
    expected = [config.learning_rate * lr_factor(steps + k, config.lr_schedule(), steps) for k in range(steps)]
    assert [rate for _, rate in last["lr_steps"]] == pytest.approx(expected)
    drawn: dict[str, object] = {}

    def keep(fig: object, path: object) -> object:
        drawn["fig"] = fig
        return path

    monkeypatch.setattr(curves, "save_png", keep)
    curves.draw_curves(result.history, tmp_path / "curves.png")
    loss, _, rate = drawn["fig"].axes  # type: ignore[attr-defined]
    labels_drawn = [line.get_label() for line in loss.get_lines()]
    assert labels_drawn == ["train (no label smoothing, as held-out)", "train (optimised, with label smoothing)", "test"]
    assert list(loss.get_lines()[0].get_ydata()) == [first["train_loss_unsmoothed"], last["train_loss_unsmoothed"]]
    assert len(rate.get_lines()[0].get_xdata()) == 2 * steps and rate.get_title() == "learning rate (every step)"
