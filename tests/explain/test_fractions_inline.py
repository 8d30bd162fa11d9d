"""Fractions in kernels and inputs (the slides' 1/9 blur), and inline matrices longer than a file name may be."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.cli import main
from cnnkit.explain import explain_conv, parse_matrix
from cnnkit.explain.matrices import parse_number

BLUR = "1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9"
# deck 003's RGB image (Representing RGB Image), typed inline: channels R | G | B
RGB = ("253 144 120 251 41; 67 100 32 241 23; 209 118 124 27 59; 35 236 105 169 19; 115 104 199 197 74 | "
       "23 125 233 201 98; 14 49 32 241 59; 88 89 124 27 19; 65 14 105 169 4; 167 33 199 197 19 | "
       "60 7 98 14 19; 165 159 147 196 169; 187 204 165 41 111; 209 30 201 23 203; 58 79 218 59 118")
VERTICAL = "1 0 -1; 1 0 -1; 1 0 -1"


@pytest.mark.parametrize(("text", "value"), [("1/9", 1 / 9), ("-2/4", -0.5), ("1.5/3", 0.5), ("3", 3.0), (" 1/8 ", 0.125)])
def test_numbers_and_fractions(text: str, value: float) -> None:
    assert parse_number(text) == value


def test_fractions_in_every_form() -> None:
    ninth = np.full((3, 3), 1 / 9)
    np.testing.assert_array_equal(parse_matrix(BLUR, "kernel"), ninth)
    np.testing.assert_array_equal(parse_matrix('[["1/9", "1/9", "1/9"], ["1/9", "1/9", "1/9"], ["1/9", "1/9", "1/9"]]', "kernel"), ninth)
    np.testing.assert_array_equal(parse_matrix("1/2,-1/4", "kernel"), [[0.5, -0.25]])


@pytest.mark.parametrize("seed", range(10))
def test_random_fraction_kernels_agree_with_torch(seed: int) -> None:
    rng = np.random.default_rng(900 + seed)
    top, bottom = rng.integers(-9, 10, (3, 3)), rng.integers(1, 10, (3, 3))
    text = "; ".join(" ".join(f"{a}/{b}" for a, b in zip(r1, r2, strict=True)) for r1, r2 in zip(top, bottom, strict=True))
    x = rng.integers(0, 256, (5, 6)).astype(np.float64)
    want = F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(top / bottom)[None, None], padding=1)[0, 0].numpy()
    np.testing.assert_allclose(explain_conv(x, text, padding=1).output, want, rtol=1e-12, atol=1e-9)


def test_the_slides_blur_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    x = "9 0 0 3; 0 0 0 3; 0 0 2 3; 1 1 1 1"
    assert main(["explain", "conv", "--input", x, "--kernel", BLUR, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    t = torch.tensor([[9, 0, 0, 3], [0, 0, 0, 3], [0, 0, 2, 3], [1, 1, 1, 1]], dtype=torch.float64)[None, None]
    want = F.conv2d(t, torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64))[0, 0].numpy()
    np.testing.assert_allclose(data["output"], want, rtol=0, atol=1e-12)
    assert data["kernel"] == [[1 / 9] * 3] * 3


def test_a_bad_fraction_names_the_flag_and_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "conv", "--input", "1 2; 3 4", "--kernel", "1/0 1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`kernel`" in err and "the fraction '1/0' divides by zero" in err
    assert err.endswith("Received: kernel='1/0 1'\n")
    assert main(["explain", "pool", "--input", "1/x 2; 3 4", "--size", "2"]) == 2
    assert "Received: input='1/x 2; 3 4'" in capsys.readouterr().err


def test_an_inline_rgb_image_longer_than_a_file_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(RGB) > 255  # once failed with "[Errno 36] File name too long" from Path(value).is_file()
    kernel = f"{VERTICAL} | {VERTICAL} | {VERTICAL}"
    assert main(["explain", "conv", "--input", RGB, "--kernel", kernel, "--padding", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    x = torch.tensor(parse_matrix_channels(RGB), dtype=torch.float64)[None]  # (1, 3, 5, 5)
    w = torch.tensor([[[1, 0, -1]] * 3] * 3, dtype=torch.float64)[None]  # (1, 3, 3, 3)
    np.testing.assert_array_equal(data["output"], F.conv2d(x, w, padding=1)[0].numpy())
    assert data["input"][2][0] == [60, 7, 98, 14, 19]  # the blue channel, deck 003's convolution input
    long_kernel = "; ".join(["1/9 " * 30] * 3)  # a long inline kernel too
    assert len(long_kernel) > 255
    assert main(["explain", "conv", "--input", "; ".join(["1 " * 31] * 3), "--kernel", long_kernel]) == 0
    assert "output (1x2):" in capsys.readouterr().out


def parse_matrix_channels(text: str) -> list[list[list[float]]]:
    """Plain Python: ``"a b; c d | ..."`` -> channels of rows."""
    return [[[float(v) for v in row.split()] for row in channel.split(";")] for channel in text.split("|")]


def test_a_negative_fraction_or_exponent_is_a_value_not_an_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "conv", "--input", "1 2; 3 4", "--kernel", "-1/8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["output"] == [[-0.125, -0.25], [-0.375, -0.5]]
