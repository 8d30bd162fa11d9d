"""`explain deconv`: hand-worked transposed convolutions, agreement with the reference and with torch, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit import reference as R
from cnnkit.cli import main
from cnnkit.explain import explain_deconv, render_any


def test_hand_worked_examples() -> None:
    # Dive into Deep Learning, section 14.10 ("Transposed Convolution"): the same 2x2 input and kernel
    x, k = "0 1; 2 3", "0 1; 2 3"
    assert explain_deconv(x, k).output == [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    assert explain_deconv(x, k, stride=2).output == [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]
    # padding cuts one row and column from every side of the stride-1 result
    assert explain_deconv(x, k, padding=1).output == [[4]]


def test_each_input_cell_scatters_a_scaled_kernel() -> None:
    c = explain_deconv("1 2; 3 4", "1 0; 2 1", stride=2, padding=1, output_padding=1, bias=0.5)
    scatter = [s for s in c.steps if "block" in s]
    assert [(s["row"], s["col"]) for s in scatter] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert scatter[1]["block"] == [[2, 0], [4, 2]] and (scatter[1]["rows"], scatter[1]["cols"]) == ([0, 1], [2, 3])
    assert "2*1=2 2*0=0" in scatter[1]["details"][0]
    # full: the four 2x2 copies, 2 apart, plus output_padding's zero row and column; then 1 cut from every side
    assert c.extra["full_output"] == [[1, 0, 2, 0, 0], [2, 1, 4, 2, 0], [3, 0, 4, 0, 0], [6, 3, 8, 4, 0], [0, 0, 0, 0, 0]]
    assert c.output == [[1.5, 4.5, 2.5], [0.5, 4.5, 0.5], [3.5, 8.5, 4.5]]
    assert c.extra["output_size"]["height"]["formula"] == "(2 - 1)*2 - 2*1 + (2 - 1) + 1 + 1 = 3"
    assert c.extra["agrees_with_reference"] and c.extra["equivalent_convolution_agrees"]
    text = render_any(c)
    assert "input[0,1] = 2: 2 x kernel added into full rows 0-1, columns 2-3" in text
    assert "cross-correlated with the kernel turned 180 degrees" in text and "kernel flipped" in text


@pytest.mark.parametrize(("h", "w", "kh", "kw"), [(1, 1, 1, 1), (2, 3, 2, 2), (3, 3, 3, 3), (4, 2, 3, 1), (3, 4, 2, 3)])
@pytest.mark.parametrize(("stride", "padding", "output_padding"), [(1, 0, 0), (2, 0, 0), (2, 1, 1), (3, 1, 2), (2, 0, 1)])
def test_agrees_with_reference_and_torch(h: int, w: int, kh: int, kw: int, stride: int, padding: int,
                                         output_padding: int) -> None:
    rng = np.random.default_rng(h * 100 + w * 10 + kh + stride)
    x, k = rng.integers(-4, 5, (h, w)).astype(float), rng.integers(-3, 4, (kh, kw)).astype(float)
    height = (h - 1) * stride - 2 * padding + kh + output_padding
    width = (w - 1) * stride - 2 * padding + kw + output_padding
    if min(height, width) <= 0:
        with pytest.raises(ValueError, match="which is not positive"):
            explain_deconv(x, k, stride, padding, output_padding)
        return
    c = explain_deconv(x, k, stride, padding, output_padding, bias=0.25)
    out = np.asarray(c.output, dtype=np.float64)
    assert out.shape == (height, width)
    ref = R.conv_transpose2d(x[None, None], k[None, None], np.array([0.25]), stride, padding, output_padding)[0, 0]
    torch_out = F.conv_transpose2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None],
                                   torch.tensor([0.25], dtype=torch.float64), stride, padding, output_padding)[0, 0]
    np.testing.assert_allclose(out, ref, atol=1e-12)
    np.testing.assert_allclose(out, torch_out.numpy(), atol=1e-12)
    assert c.extra["agrees_with_reference"]
    if padding <= min(kh, kw) - 1:
        assert c.extra["equivalent_convolution_agrees"]
        np.testing.assert_allclose(c.parts[0].output, out, atol=1e-12)


def test_cli_text_json_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "deconv", "--input", "0 1; 2 3", "--kernel", "0 1; 2 3", "--stride", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["op"] == "deconv" and data["output"][3] == [4, 6, 6, 9] and data["agrees_with_reference"]
    assert data["parts"][0]["op"] == "conv" and data["parts"][0]["output"] == data["output"]
    assert main(["explain", "deconv", "--input", "1 2; 3 4", "--kernel", "1 1; 1 1"]) == 0
    assert "check: cnnkit.reference.conv_transpose2d gives the same output" in capsys.readouterr().out
    assert main(["explain", "deconv", "--input", "1 2", "--kernel", "1", "--output-padding", "1"]) == 2
    err = capsys.readouterr().err
    assert "`output_padding` (1) must be smaller than the stride or the dilation (1)" in err and err.count("\n") == 1
