"""Backpropagation through one convolution, worked with the numbers and checked against the reference backward.

For ``Y = X (*) K + b`` (cross-correlation, stride 1, no padding; ``X`` is ``H x W``,
``K`` is ``kh x kw``) and a loss ``L`` whose gradient at the output is ``G = dL/dY``::

    dL/dK[u, v] = sum_{i,j} X[i + u, j + v] * G[i, j]     the cross-correlation of X with G
    dL/dX[a, b] = sum_{u,v} G[a - u, b - v] * K[u, v]     G zero-padded by (kh - 1, kw - 1), cross-correlated
                                                          with K turned 180 degrees: the "full" convolution
    dL/db       = sum_{i,j} G[i, j]

Both convolutions are worked cell by cell with :func:`cnnkit.explain.explain_conv`, and
the results are compared with :func:`cnnkit.reference.conv2d_backward`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit import reference as R
from cnnkit.explain.matrices import inline, number, parse_matrix, to_lists
from cnnkit.explain.steps import explain_conv
from cnnkit.explain.working import Calculation


def explain_conv_backprop(
    input: str | npt.ArrayLike, kernel: str | npt.ArrayLike, grad: str | npt.ArrayLike | None = None
) -> Calculation:
    """Gradients of a stride-1, unpadded 2-D convolution with respect to its kernel, input and bias, step by step.

    ``(H, W), (kh, kw), (H - kh + 1, W - kw + 1) -> dL/dX (H, W), dL/dK (kh, kw), dL/db``.
    ``grad`` is ``dL/dY``; without it, ``L = sum(Y)``, so ``dL/dY`` is all ones.

    >>> c = explain_conv_backprop("1 2 3; 4 5 6; 7 8 9", "1 0; 0 -1", "1 2; 3 4")
    >>> c.output["grad_weight"], c.extra["agrees_with_reference"]
    ([[37, 47], [67, 77]], True)
    """
    x, k = parse_matrix(input, "input"), parse_matrix(kernel, "kernel")
    forward = explain_conv(x, k)
    g = np.ones_like(forward.output) if grad is None else parse_matrix(grad, "grad")
    if g.shape != forward.output.shape:
        raise ValueError(
            f"`grad` (dL/dY) must have the output's shape {forward.output.shape}, (H - kh + 1) x (W - kw + 1). "
            f"Received: grad shape={g.shape}"
        )
    grad_weight = explain_conv(x, g)  # dL/dK: X cross-correlated with G
    pads = (k.shape[0] - 1, k.shape[1] - 1)
    grad_input = explain_conv(g, k, padding=pads, flip=True)  # dL/dX: full convolution, kernel turned 180 degrees
    grad_bias = float(g.sum())

    ref_x, ref_w, ref_b = R.conv2d_backward(g[None, None], x[None, None], k[None, None], np.zeros(1))
    differences = {
        "grad_input": float(np.abs(ref_x[0, 0] - grad_input.output).max()),
        "grad_weight": float(np.abs(ref_w[0, 0] - grad_weight.output).max()),
        "grad_bias": abs(float(ref_b[0]) - grad_bias) if ref_b is not None else 0.0,
    }
    agrees = all(np.isclose(d, 0.0, atol=1e-9) for d in differences.values())
    steps = [
        {"label": "forward", "expression": f"Y = X (*) K, {x.shape[0]}x{x.shape[1]} (*) {k.shape[0]}x{k.shape[1]} -> "
                                           f"{forward.output.shape[0]}x{forward.output.shape[1]}: [{inline(forward.output)}]"},
        {"label": "dL/dY", "expression": f"[{inline(g)}]" + (" (L = sum of Y, so every entry is 1)" if grad is None else "")},
        {"label": "dL/dK", "expression": f"X cross-correlated with dL/dY ({x.shape[0]}x{x.shape[1]} (*) {g.shape[0]}x{g.shape[1]}) "
                                         f"= [{inline(grad_weight.output)}]"},
        {"label": "dL/dX", "expression": f"dL/dY padded with {pads[0]} row(s) and {pads[1]} column(s) of zeros on each side, "
                                         f"cross-correlated with K turned 180 degrees [{inline(k[::-1, ::-1])}] "
                                         f"= [{inline(grad_input.output)}]"},
        {"label": "dL/db", "expression": f"sum of dL/dY = {number(grad_bias):g}"},
        {"label": "check", "expression": "cnnkit.reference.conv2d_backward gives " +
                                         ("the same dL/dX, dL/dK and dL/db" if agrees else f"different values: {differences}")},
    ]
    notes = [
        "dL/dK[u,v] = sum_ij X[i+u, j+v]*dL/dY[i,j]: each weight met every input cell of its window position, so its "
        "gradient is the cross-correlation of the input with the output gradient",
        "dL/dX[a,b] = sum_uv dL/dY[a-u, b-v]*K[u,v]: each input cell fed every output whose window covers it, so its "
        "gradient is the full convolution of dL/dY with K (padding kh-1, kw-1), i.e. cross-correlation with K turned 180 degrees",
        "these agree with cnnkit.reference.conv2d_backward" if agrees else "these DO NOT agree with cnnkit.reference.conv2d_backward",
    ]
    return Calculation(
        "backprop",
        f"backprop through a convolution: {x.shape[0]}x{x.shape[1]} input, {k.shape[0]}x{k.shape[1]} kernel, stride 1, no padding",
        {"input": to_lists(x), "kernel": to_lists(k), "grad": to_lists(g)},
        {"grad_input": to_lists(grad_input.output), "grad_weight": to_lists(grad_weight.output), "grad_bias": number(grad_bias)},
        steps,
        notes,
        parts=[forward, grad_weight, grad_input],
        extra={"agrees_with_reference": bool(agrees), "max_difference": differences},
    )
