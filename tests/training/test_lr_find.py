"""The learning-rate range test: the rates tried, the smoothed curve, the suggestions, divergence, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main
from cnnkit.training import TrainConfig
from cnnkit.training.lr_find import BETA, find_lr, rates
from tests.conftest import DIGITS_CLASSES

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")


def _config(table: Path, **options: object) -> TrainConfig:
    return TrainConfig.from_dict({"model": str(table), "data": "digits", "classes": [DIGITS_CLASSES],
                                  "batch_size": 32, "precision": "fp32", **options})


def test_the_curve_and_its_suggestions(digits_net: Path) -> None:
    result = find_lr(_config(digits_net), start=1e-5, end=1.0, steps=40)
    tried = len(result.rates)
    assert result.rates == rates(1e-5, 1.0, 40)[:tried] and tried >= 20
    assert all(math.isfinite(loss) for loss in result.losses)
    # the bias-corrected moving average, recomputed here
    average, expected = 0.0, []
    for step, loss in enumerate(result.losses):
        average = BETA * average + (1 - BETA) * loss
        expected.append(average / (1 - BETA ** (step + 1)))
    np.testing.assert_allclose(result.smoothed, expected, rtol=1e-12)
    slopes = np.gradient(np.array(result.smoothed), np.log(result.rates))[1:-1]  # central differences inside
    assert result.steepest == result.rates[1 + int(np.argmin(slopes))]
    assert result.minimum_tenth == result.rates[int(np.argmin(result.smoothed))] / 10
    assert min(result.smoothed) < result.smoothed[0]  # the network learnt something at some rate


def test_a_diverging_rate_ends_the_test(digits_net: Path) -> None:
    result = find_lr(_config(digits_net, optimizer="sgd"), start=1e-3, end=1e6, steps=60)
    assert result.diverged and len(result.rates) < 60


def test_the_command_writes_the_figure_and_prints_the_rates(digits_net: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    figure = tmp_path / "lr.png"
    assert main(["lr-find", "--model", str(digits_net), "--data", "digits", "--classes", DIGITS_CLASSES, "--steps",
                 "20", "--start", "1e-4", "--end", "1", "--precision", "fp32", "--out", str(figure), "--json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["figure"] == str(figure) and figure.stat().st_size > 10_000
    assert len(output["rates"]) == len(output["losses"]) <= 20
    assert main(["lr-find", "--model", str(digits_net), "--data", "digits", "--start", "1", "--end", "0.1"]) == 2
    assert "0 < start < end" in capsys.readouterr().err
