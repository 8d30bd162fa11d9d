"""The explanations' figures, checked by what they draw: the outlined window, the ringed winner, the shaded border and
the written sum must be the explanation's numbers, and those numbers PyTorch's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit import explain
from cnnkit.explain import figures
from cnnkit.explain.panels import WINDOW_COLOUR, cell_text

X4 = "3 0 1 2; 1 5 8 9; 2 7 2 5; 0 1 3 1"
X5 = "3 0 1 2 4; 1 5 8 9 3; 2 7 2 5 1; 0 1 3 1 2; 1 1 6 1 0"


def _t(matrix: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(matrix, dtype=np.float64))[None, None]


def _texts(ax: Any) -> dict[tuple[int, int], str]:
    """The value written in each cell of a panel, by (row, col)."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def _shade(ax: Any) -> np.ndarray:
    """The panel's background: 1 where a cell is drawn as padding."""
    return np.asarray(ax.images[0].get_array(), dtype=np.float64)


EDGE, SMALL = "1 0 -1; 1 0 -1; 1 0 -1", "1 -1; 2 0"


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "cell"), [
    (EDGE, 1, 0, 1, (1, 2)), (EDGE, 1, 1, 1, (3, 0)), (EDGE, 2, 1, 1, (1, 1)), (SMALL, 1, 0, 2, (0, 1)),
    (SMALL, 1, "same", 1, (4, 4)),  # "same" with an even kernel: the extra row and column at the bottom and right
])
def test_conv_figure_outlines_the_window_and_writes_its_sum(kernel: str, stride: int, padding: Any, dilation: int,
                                                            cell: tuple[int, int]) -> None:
    e = explain.explain_conv(X5, kernel, stride, padding, dilation=dilation)
    fig = figures.figure(e, cell)
    step = next(s for s in e.steps if (s["row"], s["col"]) == cell)
    ax_in, ax_k, ax_out = fig.axes
    (window,) = figures.patches(ax_in, "window")
    assert figures.window_of(window) == (tuple(step["rows"]), tuple(step["cols"]))
    (chosen,) = figures.patches(ax_out, "cell")
    assert figures.window_of(chosen) == ((cell[0], cell[0]), (cell[1], cell[1]))
    assert figures.sum_text(fig) == f"output[{cell[0]},{cell[1]}] = {step['expression']}"
    # the written sum ends in PyTorch's value for that cell
    pads = e.parameters["pads"]
    padded = F.pad(_t(explain.parse_matrix(X5, "x")), (pads["left"], pads["right"], pads["top"], pads["bottom"]))
    expected = F.conv2d(padded, _t(explain.parse_matrix(kernel, "k")), stride=stride, dilation=dilation)[0, 0, cell[0], cell[1]].item()
    assert float(figures.sum_text(fig).rsplit("= ", 1)[1]) == pytest.approx(expected)
    # the cells written inside the window are the padded input's, and the padded border is the shaded one
    drawn = _texts(ax_in)
    for r in range(step["rows"][0], step["rows"][1] + 1):
        for c in range(step["cols"][0], step["cols"][1] + 1):
            assert drawn[(r, c)] == cell_text(e.padded_input[r, c])
    border = np.ones(e.padded_input.shape)
    border[pads["top"]:pads["top"] + 5, pads["left"]:pads["left"] + 5] = 0
    np.testing.assert_array_equal(_shade(ax_in), border)
    taps = figures.patches(ax_in, "tap")
    if dilation == 1:
        assert taps == []
    else:  # a dilated kernel's taps: every second cell of the window
        corners = {(round(p.get_y() + 0.45), round(p.get_x() - 0.22)) for p in taps}
        assert corners == {(step["rows"][0] + 2 * u, step["cols"][0] + 2 * v) for u in range(2) for v in range(2)}
    if padding == "same":
        assert (pads["top"], pads["bottom"], pads["left"], pads["right"]) == (0, 1, 0, 1)
    assert _texts(ax_k)[(0, 0)] == cell_text(e.kernel[0, 0])  # type: ignore[index]


def test_pool_figure_rings_the_winner_pytorch_picks() -> None:
    e = explain.explain_pool("1 3 2 1; 3 6 8 9; 8 3 3 9; 4 6 8 2", 2)
    x = _t(e.input)
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    for i, j in np.ndindex(*e.output.shape):
        fig = figures.figure(e, (i, j))
        ax_in, ax_window, _ = fig.axes
        (window,) = figures.patches(ax_in, "window")
        assert figures.window_of(window) == ((2 * i, 2 * i + 1), (2 * j, 2 * j + 1))
        (winner,) = figures.patches(ax_in, "winner")
        flat = int(indices[0, 0, i, j])
        assert (round(winner.center[1]), round(winner.center[0])) == (flat // 4, flat % 4)
        assert len(figures.patches(ax_in, "other winner")) == 3  # every other window's winner, lighter
        assert len(figures.patches(ax_in, "windows")) == 3  # the tiling of the windows beside each other
        (in_window,) = figures.patches(ax_window, "winner")
        assert (round(in_window.center[1]), round(in_window.center[0])) == (flat // 4 - 2 * i, flat % 4 - 2 * j)
        assert figures.sum_text(fig).endswith(f"= {values[0, 0, i, j].item():g} (at input row {flat // 4}, column {flat % 4})")
        figures.pyplot().close(fig)


def test_pool_figure_with_padding_shades_the_border_and_rings_inside_it() -> None:
    e = explain.explain_pool("1 2 3; 4 5 6; 7 8 9", 2, padding=1, ceil_mode=True)
    fig = figures.figure(e, (1, 1))
    ax_in = fig.axes[0]
    border = np.ones((5, 5))
    border[1:4, 1:4] = 0
    np.testing.assert_array_equal(_shade(ax_in), border)
    assert _texts(ax_in)[(0, 0)] == "-inf"
    (winner,) = figures.patches(ax_in, "winner")
    assert (round(winner.center[1]), round(winner.center[0])) == (3, 3)  # the 9, at input row 2, column 2
    expected = F.max_pool2d(_t(e.input), 2, padding=1, ceil_mode=True)[0, 0, 1, 1].item()
    assert figures.sum_text(fig) == f"output[1,1] = max(5, 6, 8, 9) = {expected:g} (at input row 2, column 2)"


def test_avg_pool_figure_has_no_winner() -> None:
    e = explain.explain_pool(X4, 2, mode="avg")
    fig = figures.figure(e, (1, 0))
    assert figures.patches(fig.axes[0], "winner") == []
    expected = F.avg_pool2d(_t(e.input), 2)[0, 0, 1, 0].item()
    assert figures.sum_text(fig) == f"output[1,0] = (2 + 7 + 0 + 1)/4 = {expected:g}"


def test_volume_figure_one_row_per_channel() -> None:
    x, kernels = "1 2 0; 3 4 1; 0 1 2 | 5 6 1; 7 8 0; 1 1 1", ["1 0; 0 1 | 0 1; 1 0", "1 1; 1 1 | -1 0; 0 0"]
    e = explain.explain_conv_volume(x, kernels, [0.5, -1], padding=1)
    fig = figures.figure(e, (1, 1, 2))
    step = next(s for s in e.steps if (s["filter"], s["row"], s["col"]) == (1, 1, 2))
    inputs = [ax for ax in fig.axes if ax.get_title().startswith("input channel")]
    assert len(inputs) == 2
    for ax in inputs:
        assert figures.window_of(figures.patches(ax, "window")[0]) == (tuple(step["rows"]), tuple(step["cols"]))
    (out,) = [ax for ax in fig.axes if figures.patches(ax, "cell")]
    assert figures.window_of(figures.patches(out, "cell")[0]) == ((1, 1), (2, 2))
    expected = F.conv2d(torch.tensor(e.input)[None], torch.tensor(e.filters), torch.tensor(e.bias), padding=1)[0, 1, 1, 2].item()
    assert figures.sum_text(fig) == (f"channel 0: {step['channels'][0]['expression']} channel 1: "
                                     f"{step['channels'][1]['expression']} output[1][1,2] = {step['expression']}")
    assert step["value"] == pytest.approx(expected)
    # two numbers mean filter 0
    assert figures.check_cell(e, (1, 2)) == (0, 1, 2)


def test_conv_backprop_figure_rows_agree_with_autograd() -> None:
    x, k = "1 2 3; 4 5 6; 7 8 9", "1 1; 1 -1"
    c = explain.explain_conv_backprop(x, k, "1 2; 3 4", stride=2, padding=1)
    fig = figures.figure(c, (1, 0))
    assert len(fig.axes) == 9 and len(c.parts) == 3
    for row, part in enumerate(c.parts):
        step = next(s for s in part.steps if (s["row"], s["col"]) == (1, 0))
        assert figures.window_of(figures.patches(fig.axes[3 * row], "window")[0]) == (tuple(step["rows"]), tuple(step["cols"]))
    xt = _t(explain.parse_matrix(x, "x")).requires_grad_()
    kt = _t(explain.parse_matrix(k, "k")).requires_grad_()
    y = F.conv2d(xt, kt, stride=2, padding=1)
    (y * _t(np.array([[1.0, 2], [3, 4]]))).sum().backward()
    lines = figures.sum_text(fig).split(" dL/dK")
    assert lines[0].startswith("Y[1,0] = ") and float(lines[0].rsplit("= ", 1)[1]) == pytest.approx(y[0, 0, 1, 0].item())
    assert float(lines[1].split(" dL/dXp")[0].rsplit("= ", 1)[1]) == pytest.approx(kt.grad[0, 0, 1, 0].item())  # type: ignore[index]
    # dL/dXp[1,0] is a padded cell's gradient; dL/dXp[1,1] would be input cell (0,0)
    assert " dL/dXp[1,0] = " in figures.sum_text(fig)


def test_pool_backprop_figure_rings_where_the_gradient_goes() -> None:
    x = "4 -3 -1; -2 3 -3; -3 2 3"
    c = explain.explain_pool_backprop(x, 2, stride=1, grad="1 2; 3 4")
    fig = figures.figure(c, (1, 0))
    ax_in, ax_g, ax_dx = fig.axes
    assert figures.window_of(figures.patches(ax_in, "window")[0]) == ((1, 2), (0, 1))
    assert figures.window_of(figures.patches(ax_g, "cell")[0]) == ((1, 1), (0, 0))
    # autograd: the gradient of output [1,0] alone lands on one input cell, the ringed one
    xt = _t(explain.parse_matrix(x, "x")).requires_grad_()
    F.max_pool2d(xt, 2, stride=1)[0, 0, 1, 0].backward()
    (target,) = zip(*np.nonzero(xt.grad[0, 0].numpy()), strict=True)  # type: ignore[index]
    (ringed,) = figures.patches(ax_dx, "to")
    assert (round(ringed.center[1]), round(ringed.center[0])) == tuple(int(v) for v in target)
    assert figures.sum_text(fig) == "window [1,0]: max(-2, 3, -3, 2) = 3 at input [1,1]: dL/dY[1,0] = 3 goes there"


def test_deconv_figure_outlines_the_scattered_copy_and_shades_what_is_cut() -> None:
    c = explain.explain_deconv("1 2; 3 4", "1 0; 2 1", stride=2, padding=1, output_padding=1)
    fig = figures.figure(c, (1, 0))
    ax_x, _, ax_full = fig.axes
    assert figures.window_of(figures.patches(ax_x, "cell")[0]) == ((1, 1), (0, 0))
    assert figures.window_of(figures.patches(ax_full, "window")[0]) == ((2, 3), (0, 1))  # rows 2*1.., columns 2*0..
    kept = np.ones((5, 5))
    kept[1:4, 1:4] = 0
    np.testing.assert_array_equal(_shade(ax_full), kept)
    expected = F.conv_transpose2d(_t(np.array([[1.0, 2], [3, 4]])), _t(np.array([[1.0, 0], [2, 1]])), stride=2, padding=1,
                                  output_padding=1)[0, 0].numpy()
    drawn = _texts(ax_full)
    np.testing.assert_allclose([[float(drawn[(r, col)]) for col in range(1, 4)] for r in range(1, 4)], expected)
    assert figures.sum_text(fig) == "input[1,0] = 3: 3 x kernel added into full rows 2-3, columns 0-1: [3 0; 6 3]"


def test_png_and_svg_files_are_valid_and_drawn(tmp_path: Path) -> None:
    e = explain.explain_conv(X4, "1 0; 0 -1", padding=1)
    png = figures.draw(e, tmp_path / "conv.png", (2, 3))
    with Image.open(png) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    assert pixels.std() > 10  # not blank
    red = np.array([int(WINDOW_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(pixels - red).sum(axis=2) < 40).sum() > 100  # the window's outline is there
    svg = figures.draw(e, tmp_path / "conv.svg", (2, 3))
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    (written,) = [el for el in root.iter() if el.get("id") == "sum"]
    step = next(s for s in e.steps if (s["row"], s["col"]) == (2, 3))
    assert " ".join("".join(written.itertext()).split()) == f"output[2,3] = {step['expression']}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.png", "conv.svg"]  # no temporary file left


def test_bad_cell_and_path_are_errors_naming_them(tmp_path: Path) -> None:
    e = explain.explain_conv("1 2 3; 4 5 6; 7 8 9", "1 0; 0 1")
    with pytest.raises(ValueError, match=r"`cell` must be a cell of the 2x2 output \(row 0-1, column 0-1\). Received: cell=2,0"):
        figures.figure(e, (2, 0))
    with pytest.raises(ValueError, match=r"`cell` must be ROW,COL, whole numbers counted from 0. Received: cell=1"):
        figures.check_cell(e, (1,))
    with pytest.raises(ValueError, match=r"`--figure` must end in .png or .svg .*Received: --figure='.*c.jpg'"):
        figures.draw(e, tmp_path / "c.jpg")
    with pytest.raises(FileNotFoundError, match=r"`--figure`: the folder .* does not exist"):
        figures.draw(e, tmp_path / "missing" / "c.png")
    with pytest.raises(ValueError, match=r"figures are drawn for conv, pool, deconv and backprop explanations. Received: op='softmax'"):
        figures.figure(explain.explain_softmax("1 2 3"))
    assert list(tmp_path.iterdir()) == []
