"""Learnable parameters of one layer, per filter and in total, as the slides' "Parameters / filter: ...?" ask.

Every count and formula comes from :mod:`cnnkit.arith` (``conv_params``,
``dense_params``, ``separable_params``); this module says what each number counts
and, for depthwise-separable convolution, compares it with a standard convolution.

    standard   (kh*kw*C_in + 1)*C_out                     C_out filters of kh x kw x C_in
    1x1        (C_in + 1)*C_out                           a dense layer over the channels, at every pixel
    depthwise  (kh*kw + 1)*C_in*M                         one kh x kw filter per channel (groups = C_in)
    separable  kh*kw*C_in*M + (C_in*M + 1)*C_out          depthwise (no bias), then 1x1 to C_out
    dense      (n_in + 1)*n_out                           one bias per unit
"""

from __future__ import annotations

from typing import Any

from cnnkit import arith
from cnnkit.explain.working import Calculation

LAYERS = ("conv", "dense", "depthwise", "separable")


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return value


def _count(p: arith.ParamCount) -> dict[str, Any]:
    return {"weights": p.weights, "biases": p.biases, "total": p.total, "formula": p.formula}


def explain_params(
    layer: str,
    *,
    in_channels: int | None = None,
    filters: int | None = None,
    kernel: arith.IntOrPair = 3,
    units: int | None = None,
    in_features: int | None = None,
    multiplier: int = 1,
    bias: bool = True,
) -> Calculation:
    """Count one layer's parameters with the formula filled in.

    ``conv``: ``in_channels``, ``filters``, ``kernel`` (1 gives the 1x1 "network in network"
    convolution). ``depthwise``: ``in_channels``, ``kernel``, ``multiplier`` filters per channel.
    ``separable``: ``in_channels``, ``filters`` (output maps), ``kernel``, ``multiplier``; compared
    with a standard convolution of the same shape. ``dense``: ``in_features``, ``units``.
    ``bias=False`` leaves the biases out (a separable convolution's depthwise part never has one).

    >>> explain_params("conv", in_channels=3, filters=10, kernel=3).output
    280
    """
    if layer not in LAYERS:
        raise ValueError(f"`layer` must be one of {', '.join(LAYERS)}. Received: layer={layer!r}")
    if layer == "dense":
        n_in, n_out = _positive("in_features", in_features), _positive("units", units)
        p = arith.dense_params(n_in, n_out, bias)
        steps = [{"label": "per unit", "expression": arith.dense_params(n_in, 1, bias).formula},
                 {"label": f"for {n_out} units", "expression": p.formula}]
        return Calculation("params", f"dense: {n_in} inputs -> {n_out} units", {"layer": layer, "in_features": n_in, "units": n_out,
                           "bias": bias}, p.total, steps, ["one bias per output unit, not one per layer"], extra={"params": _count(p)})
    c_in = _positive("in_channels", in_channels)
    kh, kw = arith.pair(kernel, "kernel", minimum=1)
    m = _positive("multiplier", multiplier)
    inputs: dict[str, Any] = {"layer": layer, "in_channels": c_in, "kernel": [kh, kw], "bias": bias}
    if layer == "conv":
        n = _positive("filters", filters)
        one, p = arith.conv_params(c_in, 1, (kh, kw), bias=bias), arith.conv_params(c_in, n, (kh, kw), bias=bias)
        steps = [{"label": "per filter", "expression": f"{kh}x{kw}x{c_in} filter: {one.formula}"},
                 {"label": f"for {n} filters", "expression": p.formula}]
        notes = [f"a filter spans all {c_in} input channels, so it has {kh}*{kw}*{c_in} weights" + (" and one bias" if bias else "")]
        if (kh, kw) == (1, 1):
            notes.append("a 1x1 convolution (network in network) is a dense layer from the channels to the filters, "
                         "applied at every pixel: it changes the depth, not the height and width")
        return Calculation("params", f"convolution: {n} filters of {kh}x{kw}x{c_in}", {**inputs, "filters": n}, p.total, steps,
                           notes, extra={"params": _count(p)})
    if layer == "depthwise":
        p = arith.conv_params(c_in, c_in * m, (kh, kw), groups=c_in, bias=bias)
        steps = [{"label": "per filter", "expression": f"{kh}x{kw}x1 filter: {arith.conv_params(1, 1, (kh, kw), bias=bias).formula}"},
                 {"label": f"for {c_in * m} filters", "expression": p.formula}]
        notes = [f"one {kh}x{kw} filter per input channel ({m} per channel), each seeing only its channel "
                 f"(groups = {c_in}); the output keeps {c_in * m} channels"]
        return Calculation("params", f"depthwise convolution: {c_in} channels, {kh}x{kw}, multiplier {m}", {**inputs, "multiplier": m},
                           p.total, steps, notes, extra={"params": _count(p)})
    n = _positive("filters", filters)
    p = arith.separable_params(c_in, n, (kh, kw), m, bias)
    depthwise = arith.conv_params(c_in, c_in * m, (kh, kw), groups=c_in, bias=False)
    pointwise = arith.conv_params(c_in * m, n, 1, bias=bias)
    standard = arith.conv_params(c_in, n, (kh, kw), bias=bias)
    ratio = p.total / standard.total
    steps = [{"label": "depthwise", "expression": f"{c_in * m} filters of {kh}x{kw}x1, no bias: {depthwise.formula}"},
             {"label": "pointwise", "expression": f"{n} filters of 1x1x{c_in * m}: {pointwise.formula}"},
             {"label": "separable total", "expression": p.formula},
             {"label": "standard convolution", "expression": f"{n} filters of {kh}x{kw}x{c_in}: {standard.formula}"},
             {"label": "ratio", "expression": f"{p.total}/{standard.total} = {ratio:.4g}"}]
    notes = [f"the separable convolution needs {ratio:.1%} of a standard convolution's parameters"]
    if m == 1:
        # the textbook approximation: (kh*kw*C + C*n)/(kh*kw*C*n), biases left out
        notes.append(f"counting weights only, the ratio is 1/{n} + 1/({kh}*{kw}) = {1 / n + 1 / (kh * kw):.4g}")
    return Calculation("params", f"depthwise-separable convolution: {c_in} -> {n} channels, {kh}x{kw}", {**inputs, "filters": n,
                       "multiplier": m}, p.total, steps, notes,
                       extra={"params": _count(p), "depthwise": _count(depthwise), "pointwise": _count(pointwise),
                              "standard": _count(standard), "ratio": ratio})
