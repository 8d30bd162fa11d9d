"""Backpropagation through one convolution, worked with the numbers and checked against the reference backward.

For ``Y = X (*) K + b`` (cross-correlation with stride ``s``, padding ``p`` and dilation ``d``; ``X`` is
``H x W``, ``Xp`` it padded, ``K`` is ``kh x kw``) and a loss ``L`` whose gradient at the output is ``G = dL/dY``::

    Y[i, j]      = sum_{u,v} Xp[i*s + u*d, j*s + v*d] * K[u, v] + b
    dL/dK[u, v]  = sum_{i,j} Xp[i*s + u*d, j*s + v*d] * G[i, j]   Xp cross-correlated with G, G's entries s cells
                                                                  apart (dilation s), moving d cells (stride d)
    dL/dXp[a, b] = sum of G[i, j]*K[u, v] over a = i*s + u*d, b = j*s + v*d:  G with s - 1 zeros between its
                   entries, padded by d(kh - 1), d(kw - 1), cross-correlated with K turned 180 degrees (dilation d);
                   dL/dX is dL/dXp without the padding
    dL/db        = sum_{i,j} G[i, j]

With ``s = d = 1`` and ``p = 0`` these are the familiar "dL/dK = X (*) G" and "dL/dX = full convolution of G with
K". Rows and columns of ``Xp`` that no window reads (the stride can step over the last few) get gradient 0.
Both convolutions are worked cell by cell with :func:`cnnkit.explain.explain_conv`, and the results are
compared with :func:`cnnkit.reference.conv2d_backward`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit import reference as R
from cnnkit.explain.matrices import inline, number, parse_matrix, to_lists
from cnnkit.explain.steps import Explanation, explain_conv
from cnnkit.explain.working import Calculation


def _side(pair: arith.Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _spread(g: np.ndarray, s: arith.Pair) -> np.ndarray:
    """``G`` with ``s - 1`` zero rows and columns between its entries: ``(Ho, Wo) -> (s(Ho - 1) + 1, s(Wo - 1) + 1)``."""
    spread = np.zeros(((g.shape[0] - 1) * s[0] + 1, (g.shape[1] - 1) * s[1] + 1))
    spread[:: s[0], :: s[1]] = g
    return spread


def _weight_step(forward: Explanation, g: np.ndarray, grad_weight: Explanation, used: arith.Pair, s: arith.Pair, d: arith.Pair) -> str:
    padded = forward.padded_input
    source = "X" if padded.shape == forward.input.shape else "the padded X"
    if used != padded.shape:
        source += f" (its first {used[0]}x{used[1]} cells: no window reads the rest)"
    how = "" if s == (1, 1) and d == (1, 1) else (
        f", dL/dY's entries {_side(s)} cell(s) apart (dilation {_side(s)}) moving {_side(d)} cell(s) at a time (stride {_side(d)})")
    return f"{source} cross-correlated with dL/dY{how} = [{inline(grad_weight.output)}]"


def _input_step(k: np.ndarray, s: arith.Pair, d: arith.Pair, grad_input: Explanation, grad_x: np.ndarray, cropped: bool) -> str:
    pads = (d[0] * (k.shape[0] - 1), d[1] * (k.shape[1] - 1))
    spread = "" if s == (1, 1) else f"with {s[0] - 1} zero row(s) and {s[1] - 1} zero column(s) between its entries, "
    dilated = "" if d == (1, 1) else f" (dilation {_side(d)})"
    text = (f"dL/dY {spread}padded with {pads[0]} row(s) and {pads[1]} column(s) of zeros on each side, "
            f"cross-correlated with K turned 180 degrees [{inline(k[::-1, ::-1])}]{dilated} = [{inline(grad_input.output)}]")
    if cropped:
        text += f"; without the padding (and with 0 for cells no window reads): [{inline(grad_x)}]"
    return text


def explain_conv_backprop(
    input: str | npt.ArrayLike,
    kernel: str | npt.ArrayLike,
    grad: str | npt.ArrayLike | None = None,
    stride: arith.IntOrPair = 1,
    padding: arith.PaddingArg = 0,
    dilation: arith.IntOrPair = 1,
) -> Calculation:
    """Gradients of a 2-D convolution with respect to its kernel, input and bias, step by step.

    ``(H, W), (kh, kw), (H_out, W_out) -> dL/dX (H, W), dL/dK (kh, kw), dL/db`` with
    ``H_out = floor((H + 2p - d(kh - 1) - 1)/s) + 1``. ``grad`` is ``dL/dY``; without it, ``L = sum(Y)``,
    so ``dL/dY`` is all ones. ``padding`` is an int, a pair, ``"same"`` or ``"valid"``.

    >>> c = explain_conv_backprop("1 2 3; 4 5 6; 7 8 9", "1 0; 0 -1", "1 2; 3 4")
    >>> c.output["grad_weight"], c.extra["agrees_with_reference"]
    ([[37, 47], [67, 77]], True)
    >>> explain_conv_backprop("1 2 3; 4 5 6; 7 8 9", "1 1; 1 1", "1 0; 0 0", stride=2, padding=1).output["grad_input"]
    [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    """
    x, k = parse_matrix(input, "input"), parse_matrix(kernel, "kernel")
    forward = explain_conv(x, k, stride, padding, dilation=dilation)
    s, d = arith.pair(stride, "stride", minimum=1), arith.pair(dilation, "dilation", minimum=1)
    pads = forward.parameters["pads"]
    g = np.ones_like(forward.output) if grad is None else parse_matrix(grad, "grad")
    if g.shape != forward.output.shape:
        raise ValueError(
            f"`grad` (dL/dY) must have the output's shape {forward.output.shape}, floor((H + 2p - d(kh - 1) - 1)/s) + 1 "
            f"per side. Received: grad shape={g.shape}"
        )
    # the padded cells the windows read: s(H_out - 1) + d(kh - 1) + 1 rows; the stride may step over the rest
    used = (s[0] * (g.shape[0] - 1) + d[0] * (k.shape[0] - 1) + 1, s[1] * (g.shape[1] - 1) + d[1] * (k.shape[1] - 1) + 1)
    grad_weight = explain_conv(forward.padded_input[: used[0], : used[1]], g, stride=d, dilation=s)  # dL/dK
    full = (d[0] * (k.shape[0] - 1), d[1] * (k.shape[1] - 1))
    grad_input = explain_conv(_spread(g, s), k, padding=full, flip=True, dilation=d)  # dL/dXp, its first used cells
    grad_padded = np.zeros(forward.padded_input.shape)
    grad_padded[: used[0], : used[1]] = grad_input.output
    grad_x = grad_padded[pads["top"] : pads["top"] + x.shape[0], pads["left"] : pads["left"] + x.shape[1]]
    grad_bias = float(g.sum())

    ref_x, ref_w, ref_b = R.conv2d_backward(g[None, None], x[None, None], k[None, None], np.zeros(1), s, padding, d)
    differences = {
        "grad_input": float(np.abs(ref_x[0, 0] - grad_x).max()),
        "grad_weight": float(np.abs(ref_w[0, 0] - grad_weight.output).max()),
        "grad_bias": abs(float(ref_b[0]) - grad_bias) if ref_b is not None else 0.0,
    }
    agrees = all(np.isclose(v, 0.0, atol=1e-9) for v in differences.values())
    geometry = f"stride {_side(s)}, " + (f"padding {padding!r}" if padding not in (0, "valid") else "no padding") + \
        ("" if d == (1, 1) else f", dilation {_side(d)}")
    steps = [
        {"label": "forward", "expression": f"Y = X (*) K ({geometry}), {x.shape[0]}x{x.shape[1]} (*) {k.shape[0]}x{k.shape[1]} -> "
                                           f"{forward.output.shape[0]}x{forward.output.shape[1]}: [{inline(forward.output)}]"},
        {"label": "dL/dY", "expression": f"[{inline(g)}]" + (" (L = sum of Y, so every entry is 1)" if grad is None else "")},
        {"label": "dL/dK", "expression": _weight_step(forward, g, grad_weight, used, s, d)},
        {"label": "dL/dX", "expression": _input_step(k, s, d, grad_input, grad_x, grad_x.shape != grad_input.output.shape)},
        {"label": "dL/db", "expression": f"sum of dL/dY = {number(grad_bias):g}"},
        {"label": "check", "expression": "cnnkit.reference.conv2d_backward gives " +
                                         ("the same dL/dX, dL/dK and dL/db" if agrees else f"different values: {differences}")},
    ]
    notes = [
        "dL/dK[u,v] = sum_ij Xp[i*s + u*d, j*s + v*d]*dL/dY[i,j]: each weight met every input cell of its window position, "
        "so its gradient is the cross-correlation of the (padded) input with the output gradient",
        "dL/dX[a,b] = sum of dL/dY[i,j]*K[u,v] over every output (i,j) and tap (u,v) that read cell (a,b): each input cell "
        "fed every output whose window covers it, so its gradient is the full convolution of dL/dY with K (kh-1, kw-1 "
        "zeros around, d(kh-1), d(kw-1) with dilation; with a stride, s-1 zeros between dL/dY's entries), i.e. cross-correlation with K turned 180 degrees",
        "these agree with cnnkit.reference.conv2d_backward" if agrees else "these DO NOT agree with cnnkit.reference.conv2d_backward",
    ]
    return Calculation(
        "backprop",
        f"backprop through a convolution: {x.shape[0]}x{x.shape[1]} input, {k.shape[0]}x{k.shape[1]} kernel, {geometry}",
        {"input": to_lists(x), "kernel": to_lists(k), "grad": to_lists(g), "stride": list(s),
         "padding": padding if isinstance(padding, str | int) else list(padding), "dilation": list(d)},
        {"grad_input": to_lists(grad_x), "grad_weight": to_lists(grad_weight.output), "grad_bias": number(grad_bias)},
        steps,
        notes,
        parts=[forward, grad_weight, grad_input],
        extra={"agrees_with_reference": bool(agrees), "max_difference": differences, "pads": pads,
               "grad_padded_input": to_lists(grad_padded)},
    )
