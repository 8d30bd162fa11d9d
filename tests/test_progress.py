"""Long steps outside the training loop say how far they are: a line at least every HEARTBEAT_S seconds when not
on a terminal, nothing for steps shorter than that (the heartbeat is set to 0 here to see every line)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit import progress
from cnnkit.progress import Ticker


def test_a_line_per_heartbeat_with_the_count_and_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)
    stream = io.StringIO()
    with Ticker("decoding", total=5, unit="images", stream=stream) as ticker:
        for _ in range(5):
            ticker.advance()
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"decoding: {n}/5 images" for n in range(1, 5)]  # not 5/5
    assert all("s left" in line for line in lines)


def test_short_steps_print_nothing() -> None:
    stream = io.StringIO()
    with Ticker("evaluating", total=3, stream=stream) as ticker:
        ticker.advance(3)
    assert stream.getvalue() == "" and ticker.lines == 0


def test_folder_decoding_and_evaluation_report_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.data.folder import load_folder
    from cnnkit.runtime import choose
    from cnnkit.tasks.classify import evaluate_batches

    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for n in range(3):
            Image.fromarray(np.full((8, 8), 40 * n, np.uint8)).save(tmp_path / name / f"{n}.png")
    splits = load_folder(tmp_path, image_size=(8, 8), grayscale=True)
    err = capsys.readouterr().err
    assert f"decoding image folder {tmp_path}: 5/6 images" in err and "6/6" not in err
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    images = splits.train.images.repeat(200, 1, 1, 1).float()  # 1,200 inputs (transform=None): three batches
    evaluate_batches(model, images, torch.zeros(len(images), dtype=torch.long), None, choose("cpu", "fp32", False))
    assert "evaluating: 512/1,200 images" in capsys.readouterr().err
