"""explain pool with padding and ceil_mode: every window and value against torch, the padded border in the text, the flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.cli import main
from cnnkit.explain import explain_pool, render


def _torch(x: np.ndarray, f: int, s: int, p: int, ceil: bool, mode: str) -> np.ndarray:
    t = torch.from_numpy(x.astype(np.float64))[None, None]
    if mode == "max":
        out = F.max_pool2d(t, f, s, p, ceil_mode=ceil)
    elif mode == "avg":
        out = F.avg_pool2d(t, f, s, p, ceil_mode=ceil)
    else:
        out = -F.max_pool2d(-t, f, s, p, ceil_mode=ceil)
    return out[0, 0].numpy()


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("mode", ["max", "avg", "min"])
def test_padded_and_ceil_mode_pooling_agrees_with_torch(seed: int, mode: str) -> None:
    rng = np.random.default_rng(300 + seed)
    f = int(rng.integers(2, 5))
    s = int(rng.integers(1, 4))
    p = int(rng.integers(0, f // 2 + 1))
    ceil = bool(rng.integers(0, 2))
    x = rng.integers(-9, 10, tuple(int(n) for n in rng.integers(f, 9, size=2))).astype(np.float64)
    want = _torch(x, f, s, p, ceil, mode)
    e = explain_pool(x, f, s, mode, p, ceil)
    np.testing.assert_allclose(e.output, want, rtol=0, atol=1e-12)
    assert [e.output_size[0].value, e.output_size[1].value] == list(want.shape)
    fill = {"max": -np.inf, "min": np.inf, "avg": 0.0}[mode]
    np.testing.assert_array_equal(e.padded_input, np.pad(x, p, constant_values=fill))
    for step in e.steps:
        window = np.asarray(step["window"], dtype=np.float64)
        # the window is the padded input's cells that the step names, clipped where a ceil_mode window hangs over
        r0, r1 = step["rows"]
        c0, c1 = step["cols"]
        np.testing.assert_array_equal(window, e.padded_input[r0:r1 + 1, c0:c1 + 1])
        assert step["value"] == pytest.approx(float(want[step["row"], step["col"]]), abs=1e-12)
        if mode == "avg":
            # torch divides by the cells inside the padded input (count_include_pad), not the ones past it
            assert step["expression"].endswith(f")/{window.size} = {step['value']:g}")
        else:
            r, c = step["winner"]
            assert x[r, c] == step["value"]


def test_the_padded_border_shows_in_the_working() -> None:
    text = render(explain_pool("1 2 3; 4 5 6; 7 8 9", 2, 2, "max", padding=1))
    assert "max pooling: 3x3 input, 2x2 windows, stride 2, padding 1" in text
    assert "padded input (5x5):\n  -inf -inf -inf -inf -inf\n  -inf    1    2    3 -inf" in text
    assert "max(-inf, -inf, -inf, 1) = 1 (at row 0, column 0)" in text
    assert "note: padding 1: the border cells are -inf, so a padded cell never wins" in text
    avg = render(explain_pool("1 2 3; 4 5 6; 7 8 9", 2, 2, "avg", padding=1))
    assert "padded input (5x5):\n  0 0 0 0 0\n  0 1 2 3 0" in avg and "(0 + 0 + 0 + 1)/4 = 0.25" in avg


def test_ceil_mode_keeps_the_last_window_and_divides_by_its_cells() -> None:
    e = explain_pool("1 2 3 4 5; 4 5 6 7 8", 2, 2, "avg", ceil_mode=True)
    assert e.output.tolist() == [[3, 5, 6.5]]  # torch: the last window holds 5 and 8 only
    assert e.steps[-1]["expression"] == "(5 + 8)/2 = 6.5"
    assert e.output_size[1].formula == "ceil((5 + 2*0 - 2)/2) + 1 = 3"
    assert "output size, ceil((n + 2p - f)/s) + 1 per side (ceil_mode)" in render(e)
    dropped = explain_pool("1 2 3; 4 5 6; 7 8 9", 2, 2, "max", padding=1, ceil_mode=True)
    assert dropped.output_size[0].formula.endswith("- 1 (the last window would start in the padding) = 2")


def test_cli_flags(capsys: pytest.CaptureFixture[str]) -> None:
    x = "1 3 2 1 5; 3 6 8 9 0; 8 3 3 9 1"
    assert main(["explain", "pool", "--input", x, "--size", "2", "--padding", "1", "--ceil-mode", "--mode", "avg", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    want = _torch(np.array([[1, 3, 2, 1, 5], [3, 6, 8, 9, 0], [8, 3, 3, 9, 1]]), 2, 2, 1, True, "avg")
    np.testing.assert_allclose(data["output"], want, rtol=0, atol=1e-12)
    assert data["parameters"]["padding"] == [1, 1] and data["parameters"]["ceil_mode"] is True
    assert data["padded_input"][0] == [0] * 7
    assert main(["explain", "pool", "--input", x, "--size", "2", "--padding", "1"]) == 0
    assert "padded input (5x7):" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--padding", "-1"], "`--padding` must be a non-negative int. Received: --padding=-1"),
    (["--padding", "2"], "pooling: `padding` (2) must be at most half the pool size (2 // 2 = 1) along the height. "
                         "Received: kernel=2, padding=2"),
])
def test_bad_padding_is_one_line_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "pool", "--input", "1 2; 3 4", "--size", "2", *argv]) == 2
    assert capsys.readouterr().err == f"cnnkit: error: {message}\n"
