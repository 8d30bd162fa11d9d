"""`cnnkit filter ... --figure`: the input, the kernel's weights and the output drawn side by side, checked by what is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit import filters
from cnnkit.cli import main
from cnnkit.explain.panels import cell_text


@pytest.fixture
def edge(tmp_path: Path) -> Path:
    """A 20x20 grey image: bright left half, a darker square in the middle."""
    pixels = np.zeros((20, 20), dtype=np.uint8)
    pixels[:, :10] = 200
    pixels[6:14, 6:14] = 90
    path = tmp_path / "edge.png"
    Image.fromarray(pixels).save(path)
    return path


def test_the_panels_are_the_image_the_weights_and_the_response(edge: Path) -> None:
    result = filters.filter_image(edge, "1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9", padding="zeros")
    fig = filters.filter_figure(result)
    ax_in, ax_k, ax_out = fig.axes[:3]
    np.testing.assert_array_equal(np.asarray(ax_in.images[0].get_array()), np.asarray(Image.open(edge)))
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax_k.texts}
    assert written == {(r, c): "1/9" for r in range(3) for c in range(3)}
    # the output panel is torch's convolution of the image, as the display shows it (a blur: clipped to 0-255)
    expected = F.conv2d(torch.tensor(np.asarray(Image.open(edge)), dtype=torch.float64)[None, None],
                        torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64), padding=1)[0, 0].numpy()
    np.testing.assert_array_equal(np.asarray(ax_out.images[0].get_array()), np.clip(np.rint(expected), 0, 255))
    assert cell_text(-2.0) == "-2"


def test_filter_figure_flag_writes_a_png(edge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sobel.png"
    assert main(["filter", str(edge), "--kernel", "sobel-x", "--figure", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["figure"] == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert np.asarray(image.convert("L"), dtype=np.float64).std() > 10


def test_a_bad_figure_path_fails_before_the_work(edge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["filter", str(edge), "--kernel", "sobel-x", "--figure", str(tmp_path / "s.gif")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"cnnkit: error: `--figure` must end in .png or .svg (the format follows the suffix). " \
                           f"Received: --figure='{tmp_path / 's.gif'}'\n"
    assert captured.out == ""
