"""What a training process spends outside its loop: phases recorded, figures drawn in the background, no SymPy
for the memory check, no teardown at exit. Values, not timings: which modules a process imported, which files a
run holds, whether the background figures equal the foreground ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnkit.cli import main
from tests.conftest import DIGITS_CLASSES, TrainedRun

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")


def test_a_run_records_where_its_time_went(digits_run: TrainedRun) -> None:
    timings = json.loads((digits_run.folder / "timings.json").read_text())
    assert timings == digits_run.output["timings"]
    phases = timings["phases"]
    assert {"start-up and imports", "data", "network", "summary", "optimizer", "training", "evaluation",
            "figures", "report"} <= set(phases)
    assert all(value >= 0 for value in phases.values())
    assert sum(phases.values()) <= timings["total"] + 0.05  # phases are disjoint stretches of the process


def test_the_memory_check_and_the_optimizers_do_not_import_the_compiler(digits_net: Path, tmp_path: Path) -> None:
    """The meta-device forward pass imported SymPy (0.7 to 2 s); the capped real pass does not. torch.optim's
    wrappers import torch._dynamo, and SymPy with it (1-2 s); cnnkit's optimizers (`training.optim.eager`) do not:
    every optimizer takes steps under its schedule, saves and loads its state."""
    code = ("import sys, torch\n"
            "from cnnkit import spec\n"
            "from cnnkit.memory import build_checked\n"
            "from cnnkit.training import TrainConfig\n"
            "from cnnkit.training.optim import Schedule, make_optimizer, make_scheduler\n"
            f"table = spec.load({str(digits_net)!r})\n"
            "source = {'kind': 'table', 'name': 'net', 'text': open(" + repr(str(digits_net)) + ").read()}\n"
            "model = build_checked(source, (1, 8, 8), 'net', (5,))\n"
            "for kind in ('sgd', 'adagrad', 'rmsprop', 'adam', 'adamw'):\n"
            "    optimizer = make_optimizer(model, TrainConfig(optimizer=kind))\n"
            "    scheduler = make_scheduler(optimizer, Schedule('onecycle', 1), 3)\n"
            "    for _ in range(3):\n"
            "        optimizer.zero_grad()\n"
            "        model(torch.rand(4, 1, 8, 8)).sum().backward()\n"
            "        optimizer.step()\n"
            "        scheduler.step()\n"
            "    optimizer.load_state_dict(optimizer.state_dict())\n"
            "print(sorted(m for m in ('sympy', 'torch._dynamo') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_network_whose_activations_do_not_fit_is_refused_with_the_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The capped real forward pass refuses what the meta estimate refused: same message, same figures."""
    from cnnkit.memory import TooLarge, build_checked

    table = "input 1x512x512\nconv 64 3x3 padding=same\nrelu\nconv 64 3x3 padding=same\n"
    monkeypatch.setenv("CNNKIT_MEMORY_LIMIT", str(128 << 20))  # one image's activations: 3 x 64 MiB
    with pytest.raises(TooLarge, match=r"net: the network would need 0\.3 GiB \(37,568 parameters: 0\.0 GiB; one "
                                       r"1x512x512 image's activations: 0\.2 GiB\), more than this machine's 0\.1 GiB"):
        build_checked({"kind": "table", "name": "net", "text": table}, (1, 512, 512), "net")
    monkeypatch.setenv("CNNKIT_MEMORY_LIMIT", str(1 << 30))
    model = build_checked({"kind": "table", "name": "net", "text": table}, (1, 512, 512), "net")
    assert model.training  # the probe ran in eval mode and gave the module back as it was


def test_figures_drawn_in_the_background_equal_the_foreground_ones(
        digits_run: TrainedRun, digits_net: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --wait, `cnnkit train` returns once metrics.json is written; a process draws the rest."""
    monkeypatch.delenv("CNNKIT_WAIT", raising=False)
    out = tmp_path / "run"
    assert main(["train", "--model", str(digits_net), "--data", "digits", "--classes", DIGITS_CLASSES, "--epochs",
                 "2", "--out", str(out), "--precision", "fp32", "--batch-size", "64", "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    background = output["background"]
    assert background["report"] == str(out / "report.html") and "report" not in output
    assert output["evaluation"]["files"] == {"metrics": str(out / "metrics.json")}  # no figures yet, none promised
    deadline = time.monotonic() + 240
    while (out / "figures.log").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not (out / "figures.log").exists(), (out / "figures.log").read_text()
    drawn = json.loads((out / "metrics.json").read_text())
    assert {"confusion_matrix", "mistakes"} <= set(drawn["files"]) and (out / "report.html").is_file()
    assert drawn["accuracy"] == output["evaluation"]["accuracy"] == digits_run.output["evaluation"]["accuracy"]
    assert drawn["confusion_matrix"] == output["evaluation"]["confusion_matrix"]


def test_the_command_exits_with_mains_status(tmp_path: Path) -> None:
    """`cnnkit` ends with os._exit after flushing: the status and the last lines still arrive."""
    missing = tmp_path / "missing"
    done = subprocess.run([sys.executable, "-m", "cnnkit", "evaluate", str(missing)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.strip().endswith("train one with `cnnkit train`")
    done = subprocess.run([sys.executable, "-m", "cnnkit", "explain", "conv", "--input", "1 2; 3 4", "--kernel", "1",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)
