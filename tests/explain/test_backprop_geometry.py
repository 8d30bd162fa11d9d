"""Backprop through a convolution with stride, padding and dilation, and through max/average pooling, against autograd."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit import arith
from cnnkit.explain import explain_conv_backprop, explain_pool_backprop


@cache
def _fixtures() -> dict[str, Any]:
    """The decks' worked examples as transcribed (the packaged copy of ../shared/fixtures/seed_examples.json)."""
    data: dict[str, Any] = json.loads((resources.files("cnnkit") / "data_files" / "seed_examples.json").read_text(encoding="utf-8"))
    return data


def _example(kind: str, name: str) -> dict[str, Any]:
    return next(e for e in _fixtures()[kind] if e["id"] == name)


def _t(array: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64))


def _autograd_conv(x: np.ndarray, k: np.ndarray, g: np.ndarray, stride: Any, padding: Any, dilation: Any) -> tuple[list, list, float]:
    tx, tk = _t(x).requires_grad_(), _t(k).requires_grad_()
    tb = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(tx[None, None], tk[None, None], tb, stride=stride, padding=padding, dilation=dilation)
    y.backward(_t(g)[None, None])
    assert tx.grad is not None and tk.grad is not None and tb.grad is not None
    return tx.grad.tolist(), tk.grad.tolist(), tb.grad.item()


@pytest.mark.parametrize("name", ["strided-7x7", "laplacian-5x5-stride-2"])
def test_the_decks_strided_convolutions(name: str) -> None:
    e = _example("convolution", name)
    x, k = np.array(e["input"]), np.array(e["kernel"])
    g = np.arange(1, np.array(e["expected"]).size + 1).reshape(np.array(e["expected"]).shape)  # a dL/dY with distinct entries
    c = explain_conv_backprop(x, k, g, stride=e["stride"])
    assert c.parts[0].output.tolist() == e["expected"]  # the forward pass is the slide's (corrected) output
    grad_x, grad_k, grad_b = _autograd_conv(x, k, g, e["stride"], 0, 1)
    assert c.output["grad_input"] == grad_x
    assert c.output["grad_weight"] == grad_k
    assert c.output["grad_bias"] == grad_b
    assert c.extra["agrees_with_reference"]
    s = e["stride"]
    assert f"dL/dY with {s - 1} zero row(s) and {s - 1} zero column(s) between its entries" in c.steps[3]["expression"]


def _random_conv_case(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int], Any, tuple[int, int]]:
    rng = np.random.default_rng(seed)
    k = rng.integers(-3, 4, tuple(int(v) for v in rng.integers(1, 4, 2)))
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding: Any = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    if seed % 5 == 0:
        padding, s = "same", (1, 1)  # torch has "same" for stride 1 only
    span = (d[0] * (k.shape[0] - 1) + 1, d[1] * (k.shape[1] - 1) + 1)
    x = rng.integers(-5, 6, (int(rng.integers(span[0], span[0] + 6)), int(rng.integers(span[1], span[1] + 6))))
    return x, k, s, padding, d


@pytest.mark.parametrize("seed", range(20))
def test_conv_backprop_with_stride_padding_dilation_matches_autograd(seed: int) -> None:
    x, k, s, padding, d = _random_conv_case(seed)
    out = arith.conv_output_size(x.shape, k.shape, s, padding, d)
    g = np.random.default_rng(seed + 1).integers(-3, 4, out)
    c = explain_conv_backprop(x, k, g, s, padding, d)
    grad_x, grad_k, grad_b = _autograd_conv(x, k, g, s, padding, d)
    # integer data: every sum is exact in float64, so the explanation must equal autograd exactly
    assert c.output["grad_input"] == grad_x
    assert c.output["grad_weight"] == grad_k
    assert c.output["grad_bias"] == grad_b
    assert c.extra["agrees_with_reference"]


@pytest.mark.parametrize("seed", range(6))
def test_the_worked_identities_with_torch(seed: int) -> None:
    """The two worked convolutions are what the docstring says, each computed again with torch."""
    x, k, s, padding, d = _random_conv_case(100 + seed)
    if padding == "same":
        padding = (0, 1)
    out = arith.conv_output_size(x.shape, k.shape, s, padding, d)
    g = np.random.default_rng(seed).normal(size=out)
    c = explain_conv_backprop(x, k, g, s, padding, d)
    _, weight_part, input_part = c.parts
    used = [s[i] * (out[i] - 1) + d[i] * (k.shape[i] - 1) + 1 for i in range(2)]
    xp = F.pad(_t(x), (padding[1], padding[1], padding[0], padding[0]))[: used[0], : used[1]]
    # dL/dK = the used part of the padded X cross-correlated with G, G's entries s apart, moving d
    expected_k = F.conv2d(xp[None, None], _t(g)[None, None], stride=d, dilation=s)[0, 0]
    np.testing.assert_allclose(weight_part.output, expected_k.numpy(), atol=1e-10)
    # dL/dXp = G spread by s, padded by d(k - 1), cross-correlated with K turned 180 degrees (dilation d)
    spread = torch.zeros((out[0] - 1) * s[0] + 1, (out[1] - 1) * s[1] + 1, dtype=torch.float64)
    spread[:: s[0], :: s[1]] = _t(g)
    rot = torch.flip(_t(k), dims=(0, 1))
    full = (d[0] * (k.shape[0] - 1), d[1] * (k.shape[1] - 1))
    expected_xp = F.conv2d(spread[None, None], rot[None, None], padding=full, dilation=d)[0, 0]
    np.testing.assert_allclose(input_part.output, expected_xp.numpy(), atol=1e-10)
    np.testing.assert_allclose(c.output["grad_input"], _autograd_conv(x, k, g, s, padding, d)[0], atol=1e-10)


def test_unread_rows_get_zero_and_the_old_case_reads_as_before() -> None:
    # 4x4 input, 2x2 kernel, stride 3: one window, rows and columns 0-1; no window reads rows or columns 2-3
    c = explain_conv_backprop(np.arange(16).reshape(4, 4), "1 2; 3 4", None, stride=3)
    assert c.output["grad_input"] == _autograd_conv(np.arange(16).reshape(4, 4), np.array([[1, 2], [3, 4]]), np.ones((1, 1)), 3, 0, 1)[0]
    assert c.output["grad_input"][2] == c.output["grad_input"][3] == [0, 0, 0, 0]
    assert "no window reads the rest" in c.steps[2]["expression"]
    plain = explain_conv_backprop("1 2 3; 4 5 6; 7 8 9", "1 0; 0 -1")
    assert plain.title.endswith("stride 1, no padding")
    assert plain.steps[2]["expression"] == "X cross-correlated with dL/dY = [12 16; 24 28]"


# ----------------------------------------------------------------------------- pooling


def _autograd_pool(x: np.ndarray, mode: str, f: Any, s: Any, p: Any, d: Any, g: np.ndarray) -> tuple[list, list]:
    tx = _t(x).requires_grad_()
    y = F.max_pool2d(tx[None, None], f, s, p, d) if mode == "max" else F.avg_pool2d(tx[None, None], f, s, p)
    y.backward(_t(g)[None, None])
    assert tx.grad is not None
    return y.detach()[0, 0].tolist(), tx.grad.tolist()


@pytest.mark.parametrize(("name", "mode"), [("max-and-average-4x4", "max"), ("max-and-average-4x4", "avg"),
                                            ("max-4x4-nit-meghalaya", "max"), ("max-3x3-feature-map", "max")])
def test_the_decks_poolings(name: str, mode: str) -> None:
    e = _example("pooling", name)
    x = np.array(e["input"])
    expected = np.array(e["expected_max" if mode == "max" else "expected_average"])
    g = np.arange(1, expected.size + 1).reshape(expected.shape)
    c = explain_pool_backprop(x, e["size"], e["stride"], mode=mode, grad=g)
    assert c.extra["forward"] == expected.tolist()
    forward, grad_x = _autograd_pool(x, mode, e["size"], e["stride"], 0, 1, g)
    assert c.extra["forward"] == forward
    assert c.output["grad_input"] == grad_x
    assert c.extra["agrees_with_reference"]


def test_overlapping_max_windows_add_up() -> None:
    """The slide's 3x3 feature map, 2x2 windows at stride 1: its 3 at [1,1] wins three windows."""
    c = explain_pool_backprop("4 -3 -1; -2 3 -3; -3 2 3", 2, stride=1)
    assert c.output["grad_input"] == [[1, 0, 0], [0, 3, 0], [0, 0, 0]]
    texts = {s["label"]: s for s in c.steps}
    assert texts["[0,0]"]["expression"] == "max(4, -3, -2, 3) = 4 at input [0,0]: dL/dY[0,0] = 1 goes there"
    assert texts["overlaps"]["details"] == ["dL/dX[1,1] = 1 (from [0,1]) + 1 (from [1,0]) + 1 (from [1,1]) = 3"]


def test_average_pooling_spreads_and_drops_the_padding_share() -> None:
    c = explain_pool_backprop("1 3 2; 3 6 8; 8 3 3", 2, padding=1, mode="avg", grad="4 8; 12 16")
    assert c.steps[0]["expression"] == ("(0 + 0 + 0 + 1)/4 = 0.25: dL/dY[0,0] = 4 spread as 4/4 = 1 to each of its 4 cells "
                                        "(3 of them padding: their share is lost)")
    assert c.output["grad_input"] == _autograd_pool(np.array([[1, 3, 2], [3, 6, 8], [8, 3, 3]]), "avg", 2, 2, 1, 1,
                                                    np.array([[4, 8], [12, 16]]))[1]


def _reads_only_padding(shape: tuple[int, int], f: tuple[int, int], s: tuple[int, int], p: tuple[int, int], d: tuple[int, int]) -> bool:
    """Whether some window holds padding only (torch's max_pool2d backward then writes out of bounds)."""
    out = arith.pool_output_size(shape, f, s, p, d)
    return not all(any(p[a] <= i * s[a] + u * d[a] < p[a] + shape[a] for u in range(f[a])) for a in range(2) for i in range(out[a]))


@pytest.mark.parametrize("seed", range(24))
def test_pool_backprop_matches_autograd(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mode = ("max", "avg")[seed % 2]
    f = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    p = (int(rng.integers(0, f[0] // 2 + 1)), int(rng.integers(0, f[1] // 2 + 1)))
    d = (1, 1) if mode == "avg" else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    low = [max(1, d[i] * (f[i] - 1) + 1 - 2 * p[i]) for i in range(2)]
    x = rng.integers(-3, 4, (int(rng.integers(low[0], low[0] + 6)), int(rng.integers(low[1], low[1] + 6))))  # ties on purpose
    if _reads_only_padding(x.shape, f, s, p, d):
        with pytest.raises(ValueError, match=r"reads only padding"):
            explain_pool_backprop(x, f, s, p, mode, None, d)
        return
    g = rng.integers(-3, 4, arith.pool_output_size(x.shape, f, s, p, d))
    c = explain_pool_backprop(x, f, s, p, mode, g, d)
    forward, grad_x = _autograd_pool(x, mode, f, s, p, d, g)
    assert c.extra["forward"] == forward
    np.testing.assert_allclose(c.output["grad_input"], grad_x, atol=1e-12)
    assert c.extra["agrees_with_reference"]


def test_backprop_errors_name_the_argument_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"`grad` \(dL/dY\) must have the output's shape \(2, 2\).*Received: grad shape=\(3, 3\)"):
        explain_conv_backprop("1 2 3 4; 5 6 7 8; 9 10 11 12; 13 14 15 16", "1 0; 0 1", np.ones((3, 3)), stride=2)
    with pytest.raises(ValueError, match=r"`dilation` applies to max pooling only .*Received: mode='avg', dilation=2"):
        explain_pool_backprop("1 2; 3 4", 2, mode="avg", dilation=2)
    with pytest.raises(ValueError, match=r"`mode` must be one of max, avg. Received: mode='min'"):
        explain_pool_backprop("1 2; 3 4", 2, mode="min")
    with pytest.raises(ValueError, match=r"`padding` \(2\) must be at most half the pool size"):
        explain_pool_backprop("1 2; 3 4", 2, padding=2)
    with pytest.raises(ValueError, match=r"`grad` \(dL/dY\) must have the pooled output's shape \(1, 1\).*Received: grad shape=\(1, 2\)"):
        explain_pool_backprop("1 2; 3 4", 2, grad="1 2")
