"""Step-by-step convolution and pooling on one small matrix, as the slides work them.

Every number comes from one place: the output size and its formula from
:mod:`cnnkit.arith`, the padding, the windows and the outputs from
:mod:`cnnkit.reference`. This module only lays them out, cell by cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit import reference as R
from cnnkit.explain.matrices import Number, inline, number, parse_matrix, to_lists

POOL_MODES = ("max", "avg", "min")


@dataclass(frozen=True)
class Explanation:
    """One worked convolution or pooling: inputs, output size with its formula, every output cell's step."""

    op: str  # "conv" or "pool"
    title: str  # one line, e.g. "convolution (cross-correlation): 6x6 input, 3x3 kernel, stride 1, padding 0"
    input: np.ndarray
    padded_input: np.ndarray
    output: np.ndarray
    output_size: tuple[arith.Worked, arith.Worked]  # (height, width)
    steps: list[dict[str, Any]]  # one per output cell, row-major
    parameters: dict[str, Any]
    kernel: np.ndarray | None = None  # the kernel as applied (flipped when flip=True); None for pooling
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"output": [[...]], "output_size": {...}, "steps": [...], ...}``."""
        return {
            "op": self.op,
            "title": self.title,
            "parameters": self.parameters,
            "input": to_lists(self.input),
            "padded_input": to_lists(self.padded_input),
            "kernel": None if self.kernel is None else to_lists(self.kernel),
            "output_size": {
                side: {"value": worked.value, "formula": worked.formula} for side, worked in zip(arith.SIDES, self.output_size, strict=True)
            },
            "output": to_lists(self.output),
            "steps": self.steps,
            "notes": self.notes,
        }


def _nchw(matrix: np.ndarray) -> np.ndarray:
    return matrix[None, None]  # (H, W) -> (1, 1, H, W)


def _windows(padded: np.ndarray, size: arith.Pair, stride: arith.Pair, out: arith.Pair, dilation: arith.Pair = (1, 1)) -> np.ndarray:
    """``(H_out, W_out, kh, kw)``: the cells each output looks at, from the reference ``unfold``."""
    columns = R.unfold(_nchw(padded), size, dilation=dilation, stride=stride)[0]  # (kh*kw, H_out*W_out)
    return columns.T.reshape(*out, *size)


def term(a: float, b: float) -> str:
    """``"3*(-1)"``: one product of a window cell and a kernel weight, negatives in brackets."""
    right = f"{number(b):g}"
    return f"{number(a):g}*{'(' + right + ')' if b < 0 else right}"


def dilation_note(d: arith.Pair, kernel: arith.Pair) -> str:
    """What dilation does to the windows, with the numbers."""
    span = (d[0] * (kernel[0] - 1) + 1, d[1] * (kernel[1] - 1) + 1)
    return (f"dilation {d[0]}x{d[1]}: the kernel's taps sit {d[0]} rows and {d[1]} columns apart, so a window spans "
            f"{span[0]}x{span[1]} cells; each window lists only the {kernel[0]}x{kernel[1]} cells the taps touch")


def explain_conv(
    input: str | npt.ArrayLike,
    kernel: str | npt.ArrayLike,
    stride: arith.IntOrPair = 1,
    padding: arith.PaddingArg = 0,
    bias: float = 0.0,
    flip: bool = False,
    dilation: arith.IntOrPair = 1,
) -> Explanation:
    """Convolve one matrix with one kernel, showing for every output cell the window, the products and the sum.

    ``(H, W), (kh, kw) -> (H_out, W_out)`` with ``H_out = floor((H + 2p - kh)/s) + 1``
    (``floor((H + 2p - d(kh - 1) - 1)/s) + 1`` with dilation ``d``, whose kernel taps sit ``d`` cells
    apart). CNNs compute cross-correlation; ``flip=True`` turns the kernel by 180 degrees first,
    which gives the convolution of signal processing. Matrices may be text such as ``"3 0 1; 1 5 8"`` (see
    :func:`cnnkit.explain.matrices.parse_matrix`).
    """
    x, k = parse_matrix(input, "input"), parse_matrix(kernel, "kernel")
    if not isinstance(bias, int | float) or isinstance(bias, bool):
        raise TypeError(f"`bias` must be a number. Received: bias={bias!r}")
    applied = k[::-1, ::-1].copy() if flip else k
    s, d = arith.pair(stride, "stride", minimum=1), arith.pair(dilation, "dilation", minimum=1)
    size = (x.shape[0], x.shape[1])
    kernel_size = (k.shape[0], k.shape[1])
    worked = arith.conv_output_worked(size, kernel_size, s, padding, d)
    (top, bottom), (left, right) = arith.resolve_padding(padding, size, kernel_size, s, d)
    out = (worked[0].value, worked[1].value)

    padded = R.pad(x, (left, right, top, bottom))
    output = R.conv2d(_nchw(x), _nchw(applied), np.array([bias]), s, padding, d)[0, 0]
    windows = _windows(padded, kernel_size, s, out, d)
    steps = []
    for (i, j), value in np.ndenumerate(output):
        products = windows[i, j] * applied
        total = products.sum()
        terms = " + ".join(term(a, b) for a, b in zip(windows[i, j].ravel(), applied.ravel(), strict=True))
        with_bias = f" + {number(bias):g}" if bias else ""
        steps.append({
            "row": i,
            "col": j,
            "rows": [i * s[0], i * s[0] + d[0] * (k.shape[0] - 1)],  # in the padded input
            "cols": [j * s[1], j * s[1] + d[1] * (k.shape[1] - 1)],
            "window": to_lists(windows[i, j]),
            "products": to_lists(products),
            "sum": number(total),
            "bias": number(bias),
            "value": number(value),
            "expression": f"{terms}{with_bias} = {number(value):g}",
        })
    # an int pads every side alike; "same", "valid" and pairs get each side spelled out
    pads_text = "" if isinstance(padding, int) else f" (top {top}, bottom {bottom}, left {left}, right {right})"
    notes = ["the kernel is flipped by 180 degrees first (true convolution)" if flip else
             "cross-correlation: the kernel is not flipped (what CNNs call convolution)"]
    if d != (1, 1):
        notes.append(dilation_note(d, kernel_size))
    return Explanation(
        op="conv",
        title=(f"{'convolution (kernel flipped)' if flip else 'convolution (cross-correlation)'}: {x.shape[0]}x{x.shape[1]} input, "
               f"{k.shape[0]}x{k.shape[1]} kernel, stride {s[0] if s[0] == s[1] else s}, padding {padding!r}{pads_text}"
               + ("" if d == (1, 1) else f", dilation {d[0] if d[0] == d[1] else d}")),
        input=x,
        padded_input=padded,
        output=output,
        output_size=worked,
        steps=steps,
        parameters={"stride": list(s), "padding": padding if isinstance(padding, str | int) else list(padding),
                    "pads": {"top": top, "bottom": bottom, "left": left, "right": right}, "bias": number(bias), "flip": flip, "dilation": list(d)},
        kernel=applied,
        notes=notes,
    )


POOL_FILL = {"max": -np.inf, "min": np.inf, "avg": 0.0}  # what a padded cell holds, as torch pads each pooling


def _pool_notes(mode: str, padding: arith.Pair, ceil_mode: bool) -> list[str]:
    notes = []
    if padding != (0, 0):
        side = f"{padding[0]}" if padding[0] == padding[1] else f"{padding[0]} rows, {padding[1]} columns"
        notes.append({
            "max": f"padding {side}: the border cells are -inf, so a padded cell never wins (as torch.nn.MaxPool2d pads)",
            "min": f"padding {side}: the border cells are +inf, so a padded cell never wins (min(x) = -max(-x), padded with -inf)",
            "avg": f"padding {side}: the border cells are 0 and count in the divisor (torch.nn.AvgPool2d, count_include_pad=True)",
        }[mode])
    if ceil_mode:
        notes.append("ceil_mode: the output size rounds up, so the last window may hang over the bottom or right edge of the "
                     "padded input; it takes only the cells that exist" + (" and divides by their number" if mode == "avg" else ""))
    return notes


def explain_pool(
    input: str | npt.ArrayLike,
    size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    mode: str = "max",
    padding: arith.IntOrPair = 0,
    ceil_mode: bool = False,
) -> Explanation:
    """Pool one matrix, showing for every output cell its window and how the window becomes one number.

    ``(H, W) -> (H_out, W_out)`` with ``H_out = floor((H + 2p - f)/s) + 1`` (``ceil`` with ``ceil_mode``, less a
    last window that would start in the bottom padding), as ``torch.nn.MaxPool2d`` and ``AvgPool2d`` define
    them; ``stride`` defaults to the size ``f`` and ``padding`` is at most ``f // 2``. ``mode`` is ``"max"``,
    ``"avg"`` or ``"min"``. Padded cells are ``-inf`` for max pooling (``+inf`` for min: they never win) and
    zeros for average pooling, counted in the divisor; a ``ceil_mode`` window that hangs over the padded input
    takes only the cells that exist. (JSON has no infinity: there a padded ``-inf`` or ``+inf`` cell is ``null``.)
    """
    if mode not in POOL_MODES:
        raise ValueError(f"`mode` must be one of {', '.join(POOL_MODES)}. Received: mode={mode!r}")
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"`ceil_mode` must be True or False. Received: ceil_mode={ceil_mode!r}")
    x = parse_matrix(input, "input")
    f = arith.pair(size, "size", minimum=1)
    s = f if stride is None else arith.pair(stride, "stride", minimum=1)
    p = arith.pair(padding, "padding")
    worked = arith.pool_output_worked((x.shape[0], x.shape[1]), f, s, p, 1, ceil_mode)
    pools: dict[str, Callable[..., np.ndarray]] = {"max": R.max_pool2d, "avg": R.avg_pool2d, "min": R.min_pool2d}
    output = pools[mode](_nchw(x), f, s, p, ceil_mode=ceil_mode)[0, 0]
    padded = np.pad(x, ((p[0], p[0]), (p[1], p[1])), constant_values=POOL_FILL[mode])
    steps = []
    for (i, j), value in np.ndenumerate(output):
        # a ceil_mode window may reach past the padded input: it keeps the cells that exist
        rows = (i * s[0], min(i * s[0] + f[0], padded.shape[0]))
        cols = (j * s[1], min(j * s[1] + f[1], padded.shape[1]))
        window = padded[rows[0]:rows[1], cols[0]:cols[1]]
        cells = window.ravel()
        listed = ", ".join(f"{number(v):g}" for v in cells)
        step: dict[str, Any] = {"row": i, "col": j, "rows": [rows[0], rows[1] - 1], "cols": [cols[0], cols[1] - 1],
                                "window": to_lists(window), "value": number(value)}
        if mode == "avg":
            step["sum"] = number(cells.sum())
            step["expression"] = f"({' + '.join(f'{number(v):g}' for v in cells)})/{cells.size} = {number(value):g}"
        else:
            # where the winning cell sits in the input; the first one in reading order on ties, as the backward pass
            at = int(np.argmax(cells) if mode == "max" else np.argmin(cells))
            width = cols[1] - cols[0]
            step["winner"] = [rows[0] + at // width - p[0], cols[0] + at % width - p[1]]
            step["expression"] = f"{mode}({listed}) = {number(value):g}"
        steps.append(step)
    name = {"max": "max pooling", "avg": "average pooling", "min": "min pooling"}[mode]
    extras = (f", padding {p[0] if p[0] == p[1] else p}" if p != (0, 0) else "") + (", ceil_mode" if ceil_mode else "")
    return Explanation(
        op="pool",
        title=f"{name}: {x.shape[0]}x{x.shape[1]} input, {f[0]}x{f[1]} windows, stride {s[0] if s[0] == s[1] else s}{extras}",
        input=x,
        padded_input=padded,
        output=output,
        output_size=worked,
        steps=steps,
        parameters={"size": list(f), "stride": list(s), "mode": mode, "padding": list(p), "ceil_mode": ceil_mode},
        notes=_pool_notes(mode, p, ceil_mode),
    )


def cell_text(step: dict[str, Any]) -> str:
    """``"row 1, column 2"`` plus the window, for messages about one output cell."""
    window = np.asarray(step["window"], dtype=np.float64)
    return f"row {step['row']}, column {step['col']}: the window [{inline(window)}]"


def differences(explanation: Explanation, shown: npt.ArrayLike) -> list[tuple[dict[str, Any], Number]]:
    """The steps whose value differs from ``shown`` (what a slide printed), with the printed number."""
    printed = np.asarray(shown, dtype=np.float64)
    if printed.shape != explanation.output.shape:
        raise ValueError(f"the printed matrix must have the output's shape {explanation.output.shape}. Received: shape {printed.shape}")
    by_cell = {(step["row"], step["col"]): step for step in explanation.steps}
    return [(by_cell[(i, j)], number(printed[i, j])) for i, j in zip(*np.nonzero(printed != explanation.output), strict=True)]
