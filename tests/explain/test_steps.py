"""explain conv/pool JSON against an independent, loop-by-loop computation on random integer matrices."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from cnnkit.explain import explain_conv, explain_pool


def _pads(n: int, k: int, s: int, padding: int | str) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    assert isinstance(padding, int)
    return padding, padding


def _conv_by_hand(x: np.ndarray, k: np.ndarray, s: int, padding: int | str, bias: float, flip: bool) -> dict[str, Any]:
    """Plain Python loops, nothing from cnnkit."""
    if flip:
        k = np.array([[k[k.shape[0] - 1 - r][k.shape[1] - 1 - c] for c in range(k.shape[1])] for r in range(k.shape[0])])
    (top, bottom), (left, right) = _pads(x.shape[0], k.shape[0], s, padding), _pads(x.shape[1], k.shape[1], s, padding)
    h, w = x.shape[0] + top + bottom, x.shape[1] + left + right
    padded = [[0.0] * w for _ in range(h)]
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            padded[r + top][c + left] = float(x[r][c])
    out_h, out_w = (h - k.shape[0]) // s + 1, (w - k.shape[1]) // s + 1
    output, windows, products = [], [], []
    for i in range(out_h):
        row = []
        for j in range(out_w):
            window = [[padded[i * s + u][j * s + v] for v in range(k.shape[1])] for u in range(k.shape[0])]
            product = [[window[u][v] * k[u][v] for v in range(k.shape[1])] for u in range(k.shape[0])]
            windows.append(window)
            products.append(product)
            row.append(sum(map(sum, product)) + bias)
        output.append(row)
    return {"padded": padded, "output": output, "windows": windows, "products": products, "size": (out_h, out_w)}


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int | str]:
    n_h, n_w = rng.integers(3, 9, size=2)
    k_h, k_w = rng.integers(1, 4, size=2)
    stride = int(rng.integers(1, 4))
    padding: int | str = [0, 1, 2, "same", "valid"][int(rng.integers(0, 5))]
    if padding in ("valid", 0) and (k_h > n_h or k_w > n_w):
        padding = "same"
    return rng.integers(-9, 10, (n_h, n_w)), rng.integers(-3, 4, (k_h, k_w)), stride, padding


@pytest.mark.parametrize("seed", range(40))
def test_conv_json_matches_a_hand_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, k, stride, padding = _random_case(rng)
    bias = float(rng.integers(-5, 6)) / 2
    flip = bool(seed % 2)
    got = json.loads(json.dumps(explain_conv(x, k, stride, padding, bias, flip).to_dict()))
    want = _conv_by_hand(x, k, stride, padding, bias, flip)

    assert got["output"] == want["output"]
    assert got["padded_input"] == want["padded"]
    for side, value in zip(("height", "width"), want["size"], strict=True):
        assert got["output_size"][side]["value"] == value
        assert got["output_size"][side]["formula"].endswith(f"= {value}")
    assert len(got["steps"]) == want["size"][0] * want["size"][1]
    for step, window, products, value in zip(got["steps"], want["windows"], want["products"], [v for row in want["output"] for v in row], strict=True):
        assert step["window"] == window
        assert step["products"] == products
        assert step["sum"] == sum(map(sum, products))
        assert step["value"] == value
        assert step["expression"].endswith(f"= {value:g}")


def _pool_by_hand(x: np.ndarray, f: int, s: int, mode: str) -> list[list[float]]:
    out = []
    for i in range((x.shape[0] - f) // s + 1):
        row = []
        for j in range((x.shape[1] - f) // s + 1):
            cells = [float(x[i * s + u][j * s + v]) for u in range(f) for v in range(f)]
            row.append({"max": max(cells), "min": min(cells), "avg": sum(cells) / len(cells)}[mode])
        out.append(row)
    return out


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("mode", ["max", "avg", "min"])
def test_pool_json_matches_a_hand_computation(seed: int, mode: str) -> None:
    rng = np.random.default_rng(100 + seed)
    f = int(rng.integers(1, 4))
    x = rng.integers(-9, 10, tuple(rng.integers(f, 9, size=2)))
    stride = None if seed % 3 == 0 else int(rng.integers(1, 4))
    got = json.loads(json.dumps(explain_pool(x, f, stride, mode).to_dict()))
    want = _pool_by_hand(x, f, f if stride is None else stride, mode)
    assert got["output"] == want
    assert [got["output_size"]["height"]["value"], got["output_size"]["width"]["value"]] == [len(want), len(want[0])]
    for step in got["steps"]:
        assert step["value"] == want[step["row"]][step["col"]]
        if mode != "avg":
            r, c = step["winner"]
            assert x[r][c] == step["value"]


def test_the_slides_output_size_formula_is_written_out() -> None:
    e = explain_conv(np.zeros((7, 7)), np.zeros((3, 3)), stride=2)
    assert e.to_dict()["output_size"]["height"] == {"value": 3, "formula": "(7 + 2*0 - 3)/2 + 1 = 3"}


def test_flip_turns_the_kernel_by_180_degrees() -> None:
    e = explain_conv("1 2 3; 4 5 6; 7 8 9", "1 2; 3 4", flip=True)
    assert e.to_dict()["kernel"] == [[4, 3], [2, 1]]
    assert e.steps[0]["expression"] == "1*4 + 2*3 + 4*2 + 5*1 = 23"


def test_bad_mode_and_bias() -> None:
    with pytest.raises(ValueError, match=r"`mode` must be one of max, avg, min. Received: mode='median'"):
        explain_pool("1 2; 3 4", 2, mode="median")
    with pytest.raises(TypeError, match=r"`bias` must be a number. Received: bias='1'"):
        explain_conv("1 2; 3 4", "1", bias="1")  # type: ignore[arg-type]
