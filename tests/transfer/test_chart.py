"""The comparison chart draws bars from zero: a bar's length compares as the accuracy it stands for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnkit.transfer import chart
from cnnkit.transfer.comparison import CompareResult, CompareRow


def test_accuracy_and_time_bars_start_at_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: dict[str, Any] = {}

    def keep(fig: Any, path: Path) -> Path:
        drawn["axes"] = fig.axes
        return path

    monkeypatch.setattr(chart, "save_png", keep)
    rows = [CompareRow("scratch", 0.91, 60_000, 30.0, "a"), CompareRow("extract", 0.93, 6_000, 12.0, "b"),
            CompareRow("finetune", 0.95, 4_000_000, 300.0, "c")]
    chart.comparison_chart(CompareResult("efficientnet_lite0", "digits", "test", 100, 500, rows, tmp_path),
                           tmp_path / "c.png")
    accuracy, parameters, seconds = drawn["axes"]
    assert accuracy.get_ylim() == (0.0, 100.0) and seconds.get_ylim()[0] == 0.0
    assert parameters.get_yscale() == "log" and "log" in parameters.get_ylabel()  # a log axis says so
    heights = [bar.get_height() for bar in accuracy.patches]
    assert heights == pytest.approx([91.0, 93.0, 95.0])
