"""Backpropagation through max and average pooling, window by window, checked against the reference backward.

Pooling has no weights: its backward pass only sends each output's gradient ``dL/dY[i, j]`` back into the
cells of window ``(i, j)``::

    max pooling      all of dL/dY[i, j] goes to the window's maximum (the first one in reading order on ties, as
                     torch does); the other cells of the window get nothing from it
    average pooling  dL/dY[i, j] / (kh*kw) goes to every cell of the window; a padded cell's share is lost
                     (torch's default count_include_pad=True divides by kh*kw whatever the padding)

Where windows overlap (a stride smaller than the window) a cell collects from every window that covers it:
the shares add up. Padded cells are ``-inf`` for max pooling (they never win) and ``0`` for average pooling.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit import reference as R
from cnnkit.explain.matrices import inline, number, parse_matrix, to_lists
from cnnkit.explain.working import Calculation

BACKPROP_POOL_MODES = ("max", "avg")

Cell = tuple[int, int]


def _g(value: float) -> str:
    return f"{number(value):g}"


def _side(pair: arith.Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _route(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str) -> list[Cell]:
    """The padded-input cells window ``rows x cols`` sends its gradient to: the first maximum, or every cell."""
    if mode == "max":
        at = int(np.argmax(padded[np.ix_(rows, cols)]))  # first maximum in reading order, as torch
        return [(int(rows[at // cols.size]), int(cols[at % cols.size]))]
    return [(int(r), int(c)) for r in rows for c in cols]


def _window_step(i: int, j: int, rows: np.ndarray, cols: np.ndarray, window: np.ndarray, value: float, grad: float,
                 targets: list[Cell], inside: list[Cell], mode: str) -> dict[str, Any]:
    """One output cell: its window (``rows``, ``cols``: its taps in the padded input), how it pooled, where its gradient
    goes (``inside``: input coordinates)."""
    listed = ", ".join(_g(v) for v in window.ravel())
    if mode == "max":
        r, c = inside[0]
        how = f"max({listed}) = {_g(value)} at input [{r},{c}]: dL/dY[{i},{j}] = {_g(grad)} goes there"
        share = grad
    else:
        share = grad / window.size
        lost = len(targets) - len(inside)
        how = (f"({' + '.join(_g(v) for v in window.ravel())})/{window.size} = {_g(value)}: dL/dY[{i},{j}] = {_g(grad)} "
               f"spread as {_g(grad)}/{window.size} = {_g(share)} to each of its {window.size} cells"
               + (f" ({lost} of them padding: their share is lost)" if lost else ""))
    return {"label": f"[{i},{j}]", "row": i, "col": j, "rows": [int(rows[0]), int(rows[-1])],  # first and last, padded
            "cols": [int(cols[0]), int(cols[-1])], "window": to_lists(window), "value": number(value),
            "grad": number(grad), "share": number(share), "to": [list(cell) for cell in inside], "expression": how}


def _overlap_step(received: dict[Cell, list[tuple[Cell, float]]]) -> dict[str, Any] | None:
    """Every input cell that collects from two or more windows, its shares added up; ``None`` when none does."""
    shared = {cell: shares for cell, shares in sorted(received.items()) if len(shares) > 1}
    if not shared:
        return None
    details = [f"dL/dX[{r},{c}] = " + " + ".join(f"{_g(v)} (from [{i},{j}])" for (i, j), v in shares)
               + f" = {_g(sum(v for _, v in shares))}" for (r, c), shares in shared.items()]
    return {"label": "overlaps", "expression": f"{len(shared)} input cell(s) lie in several windows: their shares add up",
            "details": details}


def _check_mode(mode: str, d: arith.Pair) -> None:
    if mode not in BACKPROP_POOL_MODES:
        raise ValueError(f"`mode` must be one of {', '.join(BACKPROP_POOL_MODES)}. Received: mode={mode!r}")
    if mode == "avg" and d != (1, 1):
        raise ValueError(f"`dilation` applies to max pooling only (torch's avg_pool2d has none). Received: mode='avg', dilation={_side(d)}")


def _reference(g: np.ndarray, x: np.ndarray, mode: str, f: arith.Pair, s: arith.Pair, p: arith.Pair, d: arith.Pair) -> np.ndarray:
    if mode == "max":
        return R.max_pool2d_backward(g[None, None], x[None, None], f, s, p, d)[0, 0]
    return R.avg_pool2d_backward(g[None, None], x[None, None], f, s, p)[0, 0]


def explain_pool_backprop(
    input: str | npt.ArrayLike,
    size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    mode: str = "max",
    grad: str | npt.ArrayLike | None = None,
    dilation: arith.IntOrPair = 1,
) -> Calculation:
    """Where max or average pooling sends each output's gradient, window by window, and what each input cell collects.

    ``(H, W), (H_out, W_out) -> dL/dX (H, W)`` with ``H_out = floor((H + 2p - d(f - 1) - 1)/s) + 1``; ``stride``
    defaults to the window size ``f``, ``padding`` may be at most ``f // 2``; ``dilation`` is for max pooling only.
    ``grad`` is ``dL/dY``; without it, ``L = sum(Y)``, so ``dL/dY`` is all ones.

    >>> explain_pool_backprop("4 -3 -1; -2 3 -3; -3 2 3", 2, stride=1).output["grad_input"]
    [[1, 0, 0], [0, 3, 0], [0, 0, 0]]
    """
    x = parse_matrix(input, "input")
    f = arith.pair(size, "size", minimum=1)
    s = f if stride is None else arith.pair(stride, "stride", minimum=1)
    p, d = arith.pair(padding, "padding"), arith.pair(dilation, "dilation", minimum=1)
    _check_mode(mode, d)
    worked = arith.pool_output_worked((x.shape[0], x.shape[1]), f, s, p, d)
    out = (worked[0].value, worked[1].value)
    g = np.ones(out) if grad is None else parse_matrix(grad, "grad")
    if g.shape != out:
        raise ValueError(f"`grad` (dL/dY) must have the pooled output's shape {out} (height {worked[0].formula}; width "
                         f"{worked[1].formula}). Received: grad shape={g.shape}")

    padded = np.full((x.shape[0] + 2 * p[0], x.shape[1] + 2 * p[1]), -np.inf if mode == "max" else 0.0)
    padded[p[0] : p[0] + x.shape[0], p[1] : p[1] + x.shape[1]] = x
    grad_padded = np.zeros(padded.shape)
    received: dict[Cell, list[tuple[Cell, float]]] = defaultdict(list)
    steps: list[dict[str, Any]] = []
    output = np.zeros(out)
    for i, j in np.ndindex(*out):
        rows, cols = i * s[0] + d[0] * np.arange(f[0]), j * s[1] + d[1] * np.arange(f[1])
        window = padded[np.ix_(rows, cols)]
        if not np.isfinite(window).any():
            raise ValueError(f"max pooling: window [{i},{j}] reads only padding (its maximum would be -inf): use less "
                             f"padding or dilation. Received: size={_side(f)}, stride={_side(s)}, padding={_side(p)}, "
                             f"dilation={_side(d)}, input shape={x.shape}")
        output[i, j] = window.max() if mode == "max" else window.mean()
        targets = _route(padded, rows, cols, mode)
        share = g[i, j] if mode == "max" else g[i, j] / window.size
        inside = [(r - p[0], c - p[1]) for r, c in targets if 0 <= r - p[0] < x.shape[0] and 0 <= c - p[1] < x.shape[1]]
        for r, c in targets:
            grad_padded[r, c] += share
        for cell in inside:
            received[cell].append(((i, j), float(share)))
        steps.append(_window_step(i, j, rows, cols, window, float(output[i, j]), float(g[i, j]), targets, inside, mode))
    grad_x = grad_padded[p[0] : p[0] + x.shape[0], p[1] : p[1] + x.shape[1]]
    overlap = _overlap_step(received)
    steps += [overlap] if overlap else []

    reference = _reference(g, x, mode, f, s, p, d)
    agrees = bool(np.allclose(reference, grad_x, atol=1e-9))
    steps += [
        {"label": "dL/dX", "expression": f"[{inline(grad_x)}]"},
        {"label": "check", "expression": f"cnnkit.reference.{mode}_pool2d_backward gives "
                                         + ("the same dL/dX" if agrees else f"[{inline(reference)}] instead")},
    ]
    name = {"max": "max pooling", "avg": "average pooling"}[mode]
    rule = ("each window's gradient goes whole to its maximum, the cell that produced the output; the other cells of the "
            "window did not change the output, so they get nothing from it" if mode == "max" else
            f"each window's gradient is divided by its {f[0] * f[1]} cells (every cell counted 1/{f[0] * f[1]} in the "
            "average), and every cell gets that share")
    notes = [rule, "an input cell in several windows (stride smaller than the window) collects from each: the shares add up",
             f"these agree with cnnkit.reference.{mode}_pool2d_backward" if agrees else
             f"these DO NOT agree with cnnkit.reference.{mode}_pool2d_backward"]
    geometry = (f"{f[0]}x{f[1]} windows, stride {_side(s)}" + (f", padding {_side(p)}" if any(p) else "")
                + ("" if d == (1, 1) else f", dilation {_side(d)}"))
    return Calculation(
        "backprop",
        f"backprop through {name}: {x.shape[0]}x{x.shape[1]} input, {geometry}",
        {"input": to_lists(x), "grad": to_lists(g), "mode": mode, "size": list(f), "stride": list(s), "padding": list(p),
         "dilation": list(d)},
        {"grad_input": to_lists(grad_x)},
        steps,
        notes,
        extra={"forward": to_lists(output), "agrees_with_reference": agrees,
               "output_size": {side: {"value": w.value, "formula": w.formula} for side, w in zip(arith.SIDES, worked, strict=True)}},
    )
