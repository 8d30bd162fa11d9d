"""Parameter counts against torch modules; backprop identities against the reference backward and torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit import layers as L
from cnnkit import reference as R
from cnnkit.explain import explain_conv_backprop, explain_params


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("c_in", "n", "k", "bias"), [(3, 10, 3, True), (192, 64, 1, True), (6, 16, 5, False), (1, 32, 3, True)])
def test_conv_and_1x1_match_torch(c_in: int, n: int, k: int, bias: bool) -> None:
    c = explain_params("conv", in_channels=c_in, filters=n, kernel=k, bias=bias)
    assert c.output == _count(nn.Conv2d(c_in, n, k, bias=bias))
    assert c.steps[1]["expression"].endswith(f"= {c.output}")


def test_the_slides_quiz_is_280() -> None:
    c = explain_params("conv", in_channels=3, filters=10, kernel=3)
    assert c.output == 280
    assert [s["expression"] for s in c.steps] == ["3x3x3 filter: (3*3*3 + 1)*1 = 28", "(3*3*3 + 1)*10 = 280"]


@pytest.mark.parametrize(("c_in", "m", "k"), [(3, 1, 3), (32, 2, 5)])
def test_depthwise_matches_grouped_conv(c_in: int, m: int, k: int) -> None:
    c = explain_params("depthwise", in_channels=c_in, kernel=k, multiplier=m)
    assert c.output == _count(nn.Conv2d(c_in, c_in * m, k, groups=c_in))
    assert explain_params("depthwise", in_channels=c_in, kernel=k, multiplier=m, bias=False).output == c_in * m * k * k


@pytest.mark.parametrize(("c_in", "n", "k"), [(3, 128, 3), (32, 64, 3), (16, 8, 5)])
def test_separable_matches_torch_and_compares_with_standard(c_in: int, n: int, k: int) -> None:
    c = explain_params("separable", in_channels=c_in, filters=n, kernel=k)
    torch_separable = nn.Sequential(nn.Conv2d(c_in, c_in, k, groups=c_in, bias=False), nn.Conv2d(c_in, n, 1))
    assert c.output == _count(torch_separable) == _count(L.SeparableConv2d(c_in, n, k))
    data = c.to_dict()
    assert data["standard"]["total"] == _count(nn.Conv2d(c_in, n, k))
    assert data["ratio"] == pytest.approx(c.output / data["standard"]["total"])
    assert [s["label"] for s in c.steps] == ["depthwise", "pointwise", "separable total", "standard convolution", "ratio"]


def test_dense_and_errors() -> None:
    assert explain_params("dense", in_features=400, units=120).output == _count(nn.Linear(400, 120)) == 48120
    with pytest.raises(ValueError, match=r"`layer` must be one of conv, dense, depthwise, separable. Received: layer='pool'"):
        explain_params("pool")
    with pytest.raises(ValueError, match=r"`filters` must be a positive int. Received: filters=None"):
        explain_params("conv", in_channels=3)


@pytest.mark.parametrize("seed", range(12))
def test_backprop_identities_against_reference_and_autograd(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    h, w = int(rng.integers(kh, 7)), int(rng.integers(kw, 7))
    x, k = rng.integers(-5, 6, (h, w)), rng.integers(-3, 4, (kh, kw))
    g = rng.integers(-3, 4, (h - kh + 1, w - kw + 1))
    c = explain_conv_backprop(x, k, g)
    assert c.extra["agrees_with_reference"]

    ref_x, ref_w, _ = R.conv2d_backward(g[None, None], x[None, None], k[None, None], np.zeros(1))
    assert c.output["grad_input"] == ref_x[0, 0].tolist()
    assert c.output["grad_weight"] == ref_w[0, 0].tolist()

    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tk = torch.tensor(k, dtype=torch.float64, requires_grad=True)
    tb = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv2d(tx[None, None], tk[None, None], tb)
    y.backward(torch.tensor(g, dtype=torch.float64)[None, None])
    assert tx.grad is not None and tk.grad is not None and tb.grad is not None
    assert c.output["grad_input"] == tx.grad.tolist()
    assert c.output["grad_weight"] == tk.grad.tolist()
    assert c.output["grad_bias"] == tb.grad.item()

    # the identities themselves, computed independently with torch: dW = X (*) G, dX = pad(G) (*) rot180(K)
    tg = torch.tensor(g, dtype=torch.float64)[None, None]
    assert torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64)[None, None], tg)[0, 0].tolist() == c.output["grad_weight"]
    rot = torch.flip(torch.tensor(k, dtype=torch.float64), dims=(0, 1))[None, None]
    assert torch.nn.functional.conv2d(tg, rot, padding=(kh - 1, kw - 1))[0, 0].tolist() == c.output["grad_input"]


def test_backprop_steps_and_default_grad() -> None:
    c = explain_conv_backprop("1 2 3; 4 5 6; 7 8 9", "1 0; 0 -1")
    assert c.inputs["grad"] == [[1, 1], [1, 1]]
    assert c.output["grad_weight"] == [[12, 16], [24, 28]]
    assert [p.op for p in c.parts] == ["conv", "conv", "conv"]
    assert c.parts[2].to_dict()["kernel"] == [[-1, 0], [0, 1]]  # the kernel turned 180 degrees
    assert c.notes[-1] == "these agree with cnnkit.reference.conv2d_backward"
    with pytest.raises(ValueError, match=r"`grad` \(dL/dY\) must have the output's shape \(2, 2\).*Received: grad shape=\(3, 3\)"):
        explain_conv_backprop("1 2 3; 4 5 6; 7 8 9", "1 0; 0 -1", np.ones((3, 3)))
