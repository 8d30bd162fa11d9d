"""The main job's promise, measured for real: LeNet-5 on Fashion-MNIST, 3 epochs, default settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnkit.cli import main

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_lenet5_three_epochs_reaches_88_percent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--model", "lenet5", "--data", "fashion-mnist", "--epochs", "3", "--out", str(out),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    evaluation = result["evaluation"]
    assert evaluation["accuracy"] >= 0.88, evaluation["accuracy"]  # the README's "about 88.4%" (batch 128)
    assert sum(map(sum, evaluation["confusion_matrix"])) == 10000
    assert [line["epoch"] for line in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())] == [1, 2, 3]
    # the README's promise: the run ends with its report and the report's figures
    assert result["report"]["report"] == str(out / "report.html") and result["report"]["notes"] == []
    for name in ("report.html", "curves.png", "confusion_matrix.png", "mistakes.png", "filters.png", "feature_maps.png",
                 "gradcam.png"):
        assert (out / name).stat().st_size > 5000, name
