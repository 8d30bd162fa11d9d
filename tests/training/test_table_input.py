"""Training a layer table on images of another size: the run says what changed, and the new parameter count."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnkit import network
from cnnkit.cli import main

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
CHANGE = ("--model lenet_slides: the table's `input 3x32x32` was replaced by 1x28x28, the size of the fashion-mnist "
          "images, because a network is built for the images it trains on; it has 44,426 parameters instead of the "
          "table's 62,006 (`conv 6 5x5` 456 -> 156; `dense 120` 48,120 -> 30,840). To train it as written: "
          "--image-size 32 --no-grayscale, or edit its `input` line.")


def test_the_change_names_the_shapes_the_counts_and_the_layers() -> None:
    # by hand: (5*5*1 + 1)*6 = 156 instead of (5*5*3 + 1)*6 = 456; 28 -> 24 -> 12 -> 8 -> 4: flatten gives 16*4*4 = 256
    # values, (256 + 1)*120 = 30,840 instead of (400 + 1)*120 = 48,120; 62,006 - 300 - 17,280 = 44,426
    assert network.table_input_change("lenet_slides", (1, 28, 28), "fashion-mnist") == CHANGE
    assert network.table_input_change("lenet_slides", (3, 32, 32), "cifar") is None  # its own size: nothing to say
    assert network.table_input_change("lenet5", (1, 28, 28), "fashion-mnist") is None  # a zoo model is built to fit


@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_training_prints_it_and_the_run_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--model", "lenet_slides", "--data", "fashion-mnist", "--train-per-class", "5", "--epochs",
                 "1", "--out", str(out), "--no-evaluate", "--no-report", "--precision", "fp32"]) == 0
    assert CHANGE in capsys.readouterr().out
    written = (out / "summary.txt").read_text()
    assert "Total params: 44,426" in written and CHANGE in written
