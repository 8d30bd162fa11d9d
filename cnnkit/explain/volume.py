"""Convolution over several input channels with several filters, worked cell by cell as the slides do.

Each filter has one ``kh x kw`` slice per input channel. For one output cell, every
slice is multiplied with its channel's window and summed; the channel sums are added
and the filter's bias comes last. Each filter gives one output map, so the output's
depth is the number of filters::

    y[f, i, j] = b[f] + sum_c sum_{u,v} w[f, c, u, v] * x_pad[c, i*s + u*d, j*s + v*d]

The output and the windows come from :mod:`cnnkit.reference` (``conv2d``, ``unfold``),
the output size and its formula from :mod:`cnnkit.arith`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit import reference as R
from cnnkit.explain.matrices import number, parse_filters, parse_volume, to_lists
from cnnkit.explain.steps import dilation_note, term


@dataclass(frozen=True)
class VolumeExplanation:
    """A worked ``(C, H, W), (F, C, kh, kw) -> (F, H_out, W_out)`` convolution: one step per filter and cell."""

    title: str
    input: np.ndarray  # (C, H, W)
    padded_input: np.ndarray  # (C, Hp, Wp)
    filters: np.ndarray  # (F, C, kh, kw), as applied (each slice turned 180 degrees when flip=True)
    bias: np.ndarray  # (F,)
    output: np.ndarray  # (F, H_out, W_out)
    output_size: tuple[arith.Worked, arith.Worked]  # (height, width)
    steps: list[dict[str, Any]]  # filter by filter, each row-major
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    op: str = "conv"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"output": [[[...]]], "output_size": {...}, "steps": [...], ...}``, output ``(F, H_out, W_out)``."""
        return {
            "op": self.op,
            "title": self.title,
            "parameters": self.parameters,
            "input": [to_lists(c) for c in self.input],
            "padded_input": [to_lists(c) for c in self.padded_input],
            "kernel": [[to_lists(s) for s in f] for f in self.filters],
            "bias": [number(b) for b in self.bias],
            "output_size": {
                side: {"value": worked.value, "formula": worked.formula} for side, worked in zip(arith.SIDES, self.output_size, strict=True)
            },
            "output_depth": int(self.output.shape[0]),
            "output": [to_lists(m) for m in self.output],
            "steps": self.steps,
            "notes": self.notes,
        }


def _bias(bias: float | Sequence[float] | npt.ArrayLike, filters: int) -> np.ndarray:
    if isinstance(bias, bool | str):
        raise TypeError(f"`bias` must be a number or one number per filter. Received: bias={bias!r}")
    try:
        values = np.asarray(bias, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`bias` must be a number or one number per filter. Received: bias={bias!r}") from error
    if values.ndim == 0:
        return np.full(filters, float(values))
    if values.shape != (filters,):
        raise ValueError(f"`bias` must be one number, or one per filter ({filters}). Received: bias={values.tolist()}")
    return values


def _signed(value: float) -> str:
    text = f"{number(value):g}"
    return f"({text})" if value < 0 else text


def explain_conv_volume(
    input: str | npt.ArrayLike,
    kernel: str | npt.ArrayLike | Sequence[str],
    bias: float | Sequence[float] | npt.ArrayLike = 0.0,
    stride: arith.IntOrPair = 1,
    padding: arith.PaddingArg = 0,
    dilation: arith.IntOrPair = 1,
    flip: bool = False,
) -> VolumeExplanation:
    """Convolve a ``C x H x W`` input with ``F`` filters of ``C x kh x kw``, showing every channel's products and sum.

    ``(C, H, W), (F, C, kh, kw), (F,) -> (F, H_out, W_out)``, ``H_out = floor((H + 2p - d(kh - 1) - 1)/s) + 1``.
    ``input`` is a volume (``"1 2; 3 4 | 5 6; 7 8"``, nested lists, ``.npy``, a colour image) or a matrix
    (one channel); ``kernel`` a 4-D array, one filter, or a list of filters (see
    :func:`cnnkit.explain.matrices.parse_filters`). ``bias`` is one number for every filter, or one
    per filter. ``flip=True`` turns each slice by 180 degrees first (true convolution).

    >>> e = explain_conv_volume("1 2; 3 4 | 5 6; 7 8", ["1 | 2", "0 | -1"], bias=[0.5, 0])
    >>> e.output.tolist()
    [[[11.5, 14.5], [17.5, 20.5]], [[-5.0, -6.0], [-7.0, -8.0]]]
    >>> e.steps[0]["expression"]
    '1 + 10 + 0.5 = 11.5'
    """
    x, w = parse_volume(input, "input"), parse_filters(kernel, "kernel")
    if w.shape[1] != x.shape[0]:
        raise ValueError(
            f"each filter needs one slice per input channel: the input has {x.shape[0]} channel(s), the filters "
            f"{w.shape[1]}. Received: input shape={x.shape}, kernel shape={w.shape}"
        )
    b = _bias(bias, w.shape[0])
    applied = w[:, :, ::-1, ::-1].copy() if flip else w
    s, d = arith.pair(stride, "stride", minimum=1), arith.pair(dilation, "dilation", minimum=1)
    size, kernel_size = (x.shape[1], x.shape[2]), (w.shape[2], w.shape[3])
    worked = arith.conv_output_worked(size, kernel_size, s, padding, d)
    (top, bottom), (left, right) = arith.resolve_padding(padding, size, kernel_size, s, d)
    out = (worked[0].value, worked[1].value)

    padded = R.pad(x, (left, right, top, bottom))
    output = R.conv2d(x[None], applied, b, s, padding, d)[0]  # (F, H_out, W_out)
    columns = R.unfold(padded[None], kernel_size, dilation=d, stride=s)[0]  # (C*kh*kw, H_out*W_out)
    windows = columns.reshape(x.shape[0], *kernel_size, *out).transpose(3, 4, 0, 1, 2)  # (H_out, W_out, C, kh, kw)
    steps = []
    for (f, i, j), value in np.ndenumerate(output):
        channels: list[dict[str, Any]] = []
        for c in range(x.shape[0]):
            window, weights = windows[i, j, c], applied[f, c]
            products = window * weights
            terms = " + ".join(term(p, q) for p, q in zip(window.ravel(), weights.ravel(), strict=True))
            channels.append({"channel": c, "window": to_lists(window), "products": to_lists(products),
                             "sum": number(products.sum()), "expression": f"{terms} = {number(products.sum()):g}"})
        total = sum(float(ch["sum"]) for ch in channels)
        sums = " + ".join(_signed(ch["sum"]) for ch in channels)
        steps.append({
            "filter": f,
            "row": i,
            "col": j,
            "rows": [i * s[0], i * s[0] + d[0] * (kernel_size[0] - 1)],  # in the padded input
            "cols": [j * s[1], j * s[1] + d[1] * (kernel_size[1] - 1)],
            "channels": channels,
            "sum": number(total),
            "bias": number(float(b[f])),
            "value": number(value),
            "expression": f"{sums} + {_signed(float(b[f]))} = {number(value):g}",
        })
    notes = [f"each filter has one {kernel_size[0]}x{kernel_size[1]} slice per input channel ({x.shape[0]}); a cell is "
             f"the sum over the channels of slice times window, plus the filter's bias; the output depth is the number "
             f"of filters ({w.shape[0]})",
             "the kernel slices are flipped by 180 degrees first (true convolution)" if flip else
             "cross-correlation: the kernel is not flipped (what CNNs call convolution)"]
    if d != (1, 1):
        notes.append(dilation_note(d, kernel_size))
    pads_text = "" if isinstance(padding, int) else f" (top {top}, bottom {bottom}, left {left}, right {right})"
    dilation_text = "" if d == (1, 1) else f", dilation {d[0] if d[0] == d[1] else d}"
    return VolumeExplanation(
        title=(f"{'convolution (kernel flipped)' if flip else 'convolution (cross-correlation)'}: "
               f"{x.shape[0]}x{x.shape[1]}x{x.shape[2]} input (C x H x W), {w.shape[0]} filter(s) of "
               f"{w.shape[1]}x{w.shape[2]}x{w.shape[3]}, stride {s[0] if s[0] == s[1] else s}, padding {padding!r}"
               f"{pads_text}{dilation_text}"),
        input=x,
        padded_input=padded,
        filters=applied,
        bias=b,
        output=output,
        output_size=worked,
        steps=steps,
        parameters={"stride": list(s), "padding": padding if isinstance(padding, str | int) else list(padding),
                    "pads": {"top": top, "bottom": bottom, "left": left, "right": right}, "dilation": list(d), "flip": flip,
                    "in_channels": int(x.shape[0]), "filters": int(w.shape[0])},
        notes=notes,
    )
