"""One unit of one layer, worked: the numbers that produced it, from the layer's own input and weights.

A *unit* is one value of a layer's output: ``(channel, y, x)`` of a map, or
``(index,)`` of a vector. :func:`work_unit` writes out how the layer computed
it, by kind of layer:

- **convolution** (any ``nn.Conv2d``: stride, padding, dilation, groups, TensorFlow "same"): for every input
  channel the window (zero padding included), the kernel and their sum of products; the bias; the total;
- **pooling** (max, average, min; ``ceil_mode`` and padding): the window and its winner, or its mean;
- **dense** (``nn.Linear``): the inputs that contribute most (``w_i * x_i``), the sum of all, the bias, the total;
- **pointwise** (activations, batch normalisation, dropout in eval): the value in, the formula, the value out;
- anything else (a block of several layers): the value, and that a finer depth shows its layers.

Each result also carries PyTorch's own value at that unit (``pytorch``), so a
reader (and the tests) can see that the worked total is the network's number,
and the pointwise layers that follow the unit in the forward pass (``then``:
batch normalisation, the activation), so a convolution's unit ends at the value
its feature map shows after ReLU. Sums are taken in float64.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit import arith
from cnnkit.layers import Conv2dSame, MinPool2d

Unit = tuple[int, ...]
POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.Hardswish, nn.Hardsigmoid,
             nn.GELU, nn.BatchNorm2d, nn.BatchNorm1d, nn.Dropout, nn.Dropout2d, nn.Identity)
_TOP_INPUTS = 12  # a dense unit lists its strongest contributions, not all of them
_FORMULAS = {"ReLU": "max(0, x)", "ReLU6": "min(max(0, x), 6)", "Sigmoid": "1 / (1 + exp(-x))", "Tanh": "tanh(x)",
             "SiLU": "x * sigmoid(x)", "Hardswish": "x * min(max(x + 3, 0), 6) / 6",
             "Hardsigmoid": "min(max(x + 3, 0), 6) / 6", "GELU": "x * Phi(x)", "Identity": "x",
             "Dropout": "x (evaluation: dropout keeps every value)", "Dropout2d": "x (evaluation: no dropout)"}


def _f(value: float | torch.Tensor) -> float:
    return float(value)


def _grid(values: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in values.double()]


def conv_padding(module: nn.Conv2d, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` zeros ``module`` puts around an input of ``size`` = (H, W) before it
    correlates (fixed, PyTorch's ``"same"`` or TensorFlow's "same" of :class:`~cnnkit.layers.Conv2dSame`)."""
    if module.padding_mode != "zeros":
        raise ValueError(f"a convolution with padding_mode={module.padding_mode!r}: only zero padding is worked out")
    if isinstance(module, Conv2dSame):
        (top, bottom), (left, right) = arith.same_padding(size, module.kernel_size, module.stride, module.dilation)
        return top, bottom, left, right
    if isinstance(module.padding, str):
        if module.padding == "valid":
            return 0, 0, 0, 0
        left, right, top, bottom = module._reversed_padding_repeated_twice  # "same": PyTorch's own split
        return int(top), int(bottom), int(left), int(right)
    ph, pw = module.padding
    return int(ph), int(ph), int(pw), int(pw)


def _check_unit(unit: Unit, shape: tuple[int, ...], layer: str) -> None:
    if len(unit) != len(shape) or any(not 0 <= u < s for u, s in zip(unit, shape, strict=True)):
        raise ValueError(f"layer {layer!r} outputs {'x'.join(map(str, shape))}; the unit must be "
                         f"{'(channel, y, x)' if len(shape) == 3 else '(index,)'} inside it. Received: {list(unit)}")


def _conv(module: nn.Conv2d, x: torch.Tensor, unit: Unit) -> dict[str, Any]:
    """``x``: the layer's input ``(C_in, H, W)``; ``unit`` = (o, y, x)."""
    o, i, j = unit
    top, bottom, left, right = conv_padding(module, (x.shape[1], x.shape[2]))
    padded = F.pad(x, (left, right, top, bottom))
    (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
    per_group = module.in_channels // module.groups
    first = (o // (module.out_channels // module.groups)) * per_group
    rows = [i * sh + u * dh for u in range(kh)]
    cols = [j * sw + v * dw for v in range(kw)]
    weight = module.weight.detach()[o].double()  # (C_in / groups, kh, kw)
    channels, total = [], 0.0
    for k in range(per_group):
        window = padded[first + k][rows][:, cols].double()
        products = window * weight[k]
        part = float(products.sum())
        total += part
        channels.append({"input_channel": first + k, "window": _grid(window), "kernel": _grid(weight[k]),
                         "sum": part})
    bias = 0.0 if module.bias is None else float(module.bias.detach()[o])
    return {"kind": "conv", "kernel": [kh, kw], "stride": [sh, sw], "dilation": [dh, dw], "groups": module.groups,
            "padding": [top, bottom, left, right],
            # the window's top-left cell in the layer's unpadded input (negative: it starts in the padding)
            "origin": [i * sh - top, j * sw - left], "channels": channels, "bias": bias, "total": total + bias}


def pool_geometry(module: nn.Module) -> tuple[str, arith.Pair, arith.Pair, arith.Pair, arith.Pair]:
    """``(kind, kernel, stride, padding, dilation)`` of a max, min or average pooling layer."""
    kind = "max" if isinstance(module, nn.MaxPool2d) else "min" if isinstance(module, MinPool2d) else "average"
    kernel = arith.pair(module.kernel_size, "kernel_size", minimum=1)  # type: ignore[arg-type]
    stride = arith.pair(module.stride or module.kernel_size, "stride", minimum=1)  # type: ignore[arg-type]
    padding = arith.pair(module.padding, "padding")  # type: ignore[arg-type]
    dilation = arith.pair(getattr(module, "dilation", 1), "dilation", minimum=1)
    return kind, kernel, stride, padding, dilation


def _pool(module: nn.Module, x: torch.Tensor, unit: Unit) -> dict[str, Any]:
    c, i, j = unit
    kind, kernel, stride, padding, dilation = pool_geometry(module)
    y0, x0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
    cells: list[list[float | None]] = []  # None: outside the input (padding, or past the edge with ceil_mode)
    inside: list[float] = []
    for u in range(kernel[0]):
        row: list[float | None] = []
        for v in range(kernel[1]):
            y, xx = y0 + u * dilation[0], x0 + v * dilation[1]
            value = float(x[c, y, xx]) if 0 <= y < x.shape[1] and 0 <= xx < x.shape[2] else None
            row.append(value)
            if value is not None:
                inside.append(value)
        cells.append(row)
    result: dict[str, Any] = {"kind": "pool", "pool": kind, "kernel": list(kernel), "stride": list(stride),
                              "padding": list(padding), "origin": [y0, x0], "window": cells}
    if kind == "average":
        # PyTorch's count_include_pad (default true) divides by the window cells within the padded input
        include = getattr(module, "count_include_pad", True)
        h_end = min(y0 + kernel[0], x.shape[1] + padding[0])
        w_end = min(x0 + kernel[1], x.shape[2] + padding[1])
        divisor = (h_end - y0) * (w_end - x0) if include else len(inside)
        if getattr(module, "divisor_override", None):
            raise ValueError("average pooling with divisor_override is not worked out")
        result.update(divisor=divisor, sum=math.fsum(inside), total=math.fsum(inside) / divisor)
    else:
        best = max(inside) if kind == "max" else min(inside)
        where = next((u, v) for u, row in enumerate(cells) for v, value in enumerate(row) if value == best)
        result.update(winner=list(where), total=best)
    return result


def _dense(module: nn.Linear, x: torch.Tensor, unit: Unit) -> dict[str, Any]:
    (o,) = unit
    inputs = x.flatten().double()
    weights = module.weight.detach()[o].double()
    products = inputs * weights
    order = torch.argsort(products.abs(), descending=True)[:_TOP_INPUTS]
    top = [{"input": int(k), "x": float(inputs[k]), "w": float(weights[k]), "product": float(products[k])}
           for k in order]
    bias = 0.0 if module.bias is None else float(module.bias.detach()[o])
    total = float(products.sum())
    return {"kind": "dense", "inputs": int(inputs.numel()), "top": top, "sum": total, "bias": bias,
            "total": total + bias}


def _pointwise(module: nn.Module, value: float, out: float) -> dict[str, Any]:
    name = type(module).__name__
    step: dict[str, Any] = {"kind": "pointwise", "input": value, "total": out}
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        step["formula"] = "(x - mean) / sqrt(var + eps) * gamma + beta"
    elif isinstance(module, nn.LeakyReLU):
        step["formula"] = f"x if x > 0 else {module.negative_slope} * x"
    elif isinstance(module, nn.ELU):
        step["formula"] = f"x if x > 0 else {module.alpha} * (exp(x) - 1)"
    else:
        step["formula"] = _FORMULAS.get(name, name)
    return step


def _norm_terms(module: nn.Module, channel: int) -> dict[str, float]:
    """A batch normalisation's per-channel numbers (running statistics: evaluation mode)."""
    assert isinstance(module, nn.modules.batchnorm._BatchNorm)
    get = (lambda t, default: default if t is None else float(t.detach()[channel]))  # noqa: E731
    return {"mean": get(module.running_mean, 0.0), "var": get(module.running_var, 1.0), "eps": float(module.eps),
            "gamma": get(module.weight, 1.0), "beta": get(module.bias, 0.0)}


def work(module: nn.Module, layer: str, x: torch.Tensor | None, out: torch.Tensor, unit: Unit) -> dict[str, Any]:
    """The worked computation of ``unit`` of ``module`` (named ``layer``), from its input ``x`` and output ``out``
    (one image: ``x`` without the batch, ``out`` likewise). ``pytorch`` is ``out`` at the unit."""
    _check_unit(unit, tuple(out.shape), layer)
    x = None if x is None else x.detach().float()
    result: dict[str, Any]
    if isinstance(module, nn.Conv2d) and x is not None and x.dim() == 3:
        result = _conv(module, x, unit)
    elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d | MinPool2d) and x is not None and x.dim() == 3:
        result = _pool(module, x, unit)
    elif isinstance(module, nn.Linear) and x is not None and x.dim() == 1:
        result = _dense(module, x, unit)
    elif isinstance(module, POINTWISE) and x is not None and x.shape == out.shape:
        result = _pointwise(module, float(x[unit]), float(out[unit]))
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            result.update(_norm_terms(module, unit[0]))
    elif next(module.children(), None) is not None:
        result = {"kind": "other", "note": f"{type(module).__name__} is shown as one step; choose a finer depth to "
                                           f"see the layers inside it"}
    else:
        result = {"kind": "other", "note": f"cnnkit works out convolutions, pooling, dense and pointwise layers; "
                                           f"this {type(module).__name__}'s value is shown as PyTorch computed it"}
    result.update(layer=layer, type=type(module).__name__, unit=list(unit), pytorch=float(out[unit]))
    return result



def page_spec(module: nn.Module, x: torch.Tensor | None, out: torch.Tensor) -> dict[str, Any] | None:
    """What a static page needs to work a unit of ``module`` itself (``explore.js``, the formulas above): its kind
    and geometry (padding for this input's size), its weights as float32 arrays; None when it has no formula here."""
    if x is None:
        return None
    name = type(module).__name__
    if isinstance(module, nn.Conv2d) and x.dim() == 3:
        return {"kind": "conv", "type": name, "weight": module.weight.detach().float(),
                "bias": None if module.bias is None else module.bias.detach().float(),
                "kernel": list(module.kernel_size), "stride": list(module.stride), "dilation": list(module.dilation),
                "groups": module.groups, "padding": list(conv_padding(module, (x.shape[1], x.shape[2])))}
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d | MinPool2d) and x.dim() == 3:
        if getattr(module, "divisor_override", None):
            return None
        kind, kernel, stride, padding, dilation = pool_geometry(module)
        return {"kind": "pool", "type": name, "pool": kind, "kernel": list(kernel), "stride": list(stride),
                "padding": list(padding), "dilation": list(dilation),
                "count_include_pad": bool(getattr(module, "count_include_pad", True))}
    if isinstance(module, nn.Linear) and x.dim() == 1:
        return {"kind": "dense", "type": name, "weight": module.weight.detach().float(),
                "bias": None if module.bias is None else module.bias.detach().float()}
    if isinstance(module, POINTWISE) and x.shape == out.shape:
        return {"kind": "pointwise", "type": name, "formula": _pointwise(module, 0.0, 0.0)["formula"]}
    return None
