"""Transposed convolution ("deconvolution") of one small matrix, worked cell by cell.

A convolution gathers a window of the input into one output cell; a transposed
convolution does the reverse: every input cell *scatters* a copy of the kernel,
scaled by the cell's value, into the output, the copies ``stride`` cells apart,
and where copies overlap they add up. Then ``padding`` rows and columns are cut
from every side (``output_padding`` gives back that many at the bottom and the
right), so per side::

    full   = (n - 1)*s + k                                 what the scattered copies cover
    output = (n - 1)*s - 2p + k + output_padding           (cnnkit.arith.conv_transpose_output_size)

The same output comes from an ordinary convolution: put ``s - 1`` zeros between
the input cells, pad ``k - 1 - p`` zeros around (``+ output_padding`` at the
bottom and the right) and cross-correlate with the kernel turned 180 degrees.
That is why a transposed convolution is the gradient of a convolution with
respect to its input, and why it brings a shrunken map back to a larger size
(U-Net's decoder, an autoencoder's decoder). Both views are worked here and
checked against :func:`cnnkit.reference.conv_transpose2d`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit import reference as R
from cnnkit.explain.matrices import inline, number, parse_matrix, to_lists
from cnnkit.explain.steps import Explanation, explain_conv, term
from cnnkit.explain.working import Calculation


def _scatter_steps(x: np.ndarray, k: np.ndarray, s: arith.Pair, full: np.ndarray) -> list[dict[str, object]]:
    """Fill ``full`` (zeros, the uncropped output) by scattering each input cell through ``k``; one step per cell."""
    kh, kw = k.shape
    steps: list[dict[str, object]] = []
    for (i, j), value in np.ndenumerate(x):
        top, left = i * s[0], j * s[1]
        block = value * k
        full[top:top + kh, left:left + kw] += block
        rows = [" ".join(f"{term(value, w)}={number(p):g}" for w, p in zip(k_row, b_row, strict=True))
                for k_row, b_row in zip(k, block, strict=True)]
        steps.append({
            "label": f"input[{i},{j}] = {number(value):g}",
            "expression": f"{number(value):g} x kernel added into full rows {top}-{top + kh - 1}, columns "
                          f"{left}-{left + kw - 1}: [{inline(block)}]",
            "details": [*rows, f"full output so far: [{inline(full)}]"],
            "row": i, "col": j, "rows": [top, top + kh - 1], "cols": [left, left + kw - 1], "block": to_lists(block),
        })
    return steps


def _as_convolution(x: np.ndarray, k: np.ndarray, s: arith.Pair, p: arith.Pair, op: arith.Pair,
                    bias: float) -> tuple[Explanation | None, str]:
    """The equivalent convolution (zeros between cells, ``k - 1 - p`` padding, kernel turned), or why there is none."""
    kh, kw = k.shape
    before = (kh - 1 - p[0], kw - 1 - p[1])
    if min(before) < 0:
        return None, (f"padding {p[0]}x{p[1]} is larger than kernel - 1 ({kh - 1}x{kw - 1}), so the equivalent "
                      f"convolution would need negative padding: it is not worked here")
    dilated = np.zeros(((x.shape[0] - 1) * s[0] + 1, (x.shape[1] - 1) * s[1] + 1))
    dilated[::s[0], ::s[1]] = x  # s - 1 zeros between neighbouring cells
    padded = R.pad(dilated, (before[1], before[1] + op[1], before[0], before[0] + op[0]))
    equivalent = explain_conv(padded, k, bias=bias, flip=True)
    how = (f"the same output as a convolution: {s[0] - 1} zero row(s) and {s[1] - 1} zero column(s) between the input "
           f"cells, {before[0]} row(s) and {before[1]} column(s) of zeros around (k - 1 - p"
           + (f", plus output_padding {op[0]}x{op[1]} at the bottom and the right" if any(op) else "")
           + "), cross-correlated with the kernel turned 180 degrees")
    return equivalent, how


def explain_deconv(input: str | npt.ArrayLike, kernel: str | npt.ArrayLike, stride: arith.IntOrPair = 1,
                   padding: arith.IntOrPair = 0, output_padding: arith.IntOrPair = 0,
                   bias: float = 0.0) -> Calculation:
    """Transposed convolution of one matrix with one kernel: how each input cell scatters through the kernel.

    ``(H, W), (kh, kw) -> (H_out, W_out)`` with ``H_out = (H - 1)*s - 2p + kh + output_padding``.

    >>> c = explain_deconv("1 2; 3 4", "1 1; 1 1", stride=2)
    >>> c.output, c.extra["agrees_with_reference"]
    ([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]], True)
    """
    x, k = parse_matrix(input, "input"), parse_matrix(kernel, "kernel")
    if not isinstance(bias, int | float) or isinstance(bias, bool):
        raise TypeError(f"`bias` must be a number. Received: bias={bias!r}")
    s, p = arith.pair(stride, "stride", minimum=1), arith.pair(padding, "padding")
    op = arith.pair(output_padding, "output_padding")
    worked = arith.conv_transpose_output_worked(x.shape, k.shape, s, p, op)
    out = (worked[0].value, worked[1].value)

    # the uncropped output, with output_padding's extra rows and columns at the bottom and the right
    full = np.zeros(((x.shape[0] - 1) * s[0] + k.shape[0] + op[0], (x.shape[1] - 1) * s[1] + k.shape[1] + op[1]))
    steps = _scatter_steps(x, k, s, full)
    output = full[p[0]:p[0] + out[0], p[1]:p[1] + out[1]] + bias
    reference = R.conv_transpose2d(x[None, None], k[None, None], np.array([bias]), s, p, op)[0, 0]
    agrees = bool(reference.shape == output.shape and np.allclose(reference, output, atol=1e-9))
    equivalent, how = _as_convolution(x, k, s, p, op, bias)
    convolution_agrees = equivalent is not None and bool(np.allclose(equivalent.output, output, atol=1e-9))

    scattered = f"{full.shape[0] - op[0]}x{full.shape[1] - op[1]}"
    extended = (f"full output {full.shape[0]}x{full.shape[1]} (the scattered {scattered} plus output_padding: "
                f"{op[0]} row(s) and {op[1]} column(s) of zeros at the bottom and the right)" if any(op)
                else f"full output {full.shape[0]}x{full.shape[1]}")
    crop = (f"cut padding {p[0]} row(s) from the top and the bottom, {p[1]} column(s) from the left and the right"
            if any(p) else "nothing to cut (padding 0)")
    steps += [
        {"label": "output size", "expression": f"height {worked[0].formula}; width {worked[1].formula}"},
        {"label": "crop", "expression": f"{extended}: {crop}, keep {out[0]}x{out[1]}"
                                        + (f", then add the bias {number(bias):g}" if bias else "")},
        {"label": "check", "expression": "cnnkit.reference.conv_transpose2d gives "
                                         + ("the same output" if agrees else f"[{inline(reference)}] instead")},
    ]
    notes = [
        "each input cell scatters value x kernel into the output, the copies stride cells apart; overlaps add up",
        "padding p cuts p rows and columns from every side of the scattered result (the opposite of a convolution's "
        "padding, which adds them); output_padding first adds rows and columns at the bottom and the right: a stride-s "
        "convolution maps s input sizes to one output size, and output_padding picks which of them to give back",
        how + (" (worked below; it agrees)" if convolution_agrees else ""),
    ]
    title = (f"transposed convolution: {x.shape[0]}x{x.shape[1]} input, {k.shape[0]}x{k.shape[1]} kernel, stride "
             f"{s[0]}x{s[1]}, padding {p[0]}x{p[1]}, output_padding {op[0]}x{op[1]} -> {out[0]}x{out[1]}")
    return Calculation(
        "deconv", title,
        {"input": to_lists(x), "kernel": to_lists(k), "stride": list(s), "padding": list(p),
         "output_padding": list(op), "bias": number(bias)},
        to_lists(output), steps, notes, parts=[] if equivalent is None else [equivalent],
        extra={"full_output": to_lists(full), "output_size": {side: {"value": w.value, "formula": w.formula}
                                                              for side, w in zip(arith.SIDES, worked, strict=True)},
               "agrees_with_reference": agrees, "equivalent_convolution_agrees": convolution_agrees},
    )
