"""Zero padding and window extraction in NumPy, each with its backward pass.

``unfold`` lists every window a convolution or a pooling layer looks at, which
is what the step-by-step explanations (:mod:`cnnkit.explain`) print.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit.reference._common import (
    Array,
    as_float,
    check_ndim,
    check_same_shape,
    scatter_windows,
    sliding_windows,
)

# ----------------------------------------------------------------------------- pad


def _pad_widths(x: Array, pad: Sequence[int], op: str) -> list[tuple[int, int]]:
    """torch's ``pad`` tuple, ``(left, right, top, bottom, ...)`` from the last dim backwards, as np.pad widths."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim or any(not isinstance(p, int) or isinstance(p, bool) for p in pad):
        raise ValueError(
            f"{op}: `pad` must be an even number of ints, at most two per dimension of the input. "
            f"Received: pad={tuple(pad)}, input shape={x.shape}"
        )
    if min(pad, default=0) < 0:
        raise ValueError(f"{op}: `pad` must not be negative (the reference does not crop). Received: pad={tuple(pad)}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return widths


def pad(input: npt.ArrayLike, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Array:
    """Constant padding, as ``torch.nn.functional.pad``: ``pad=(left, right, top, bottom)`` pads the last two dims.

    ``(N, C, H, W) -> (N, C, H + top + bottom, W + left + right)``; cells added hold ``value`` (0 by default).
    """
    x = as_float(input, "input")
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is implemented. Received: mode={mode!r}")
    return np.pad(x, _pad_widths(x, pad, "pad"), mode="constant", constant_values=0.0 if value is None else value)


def pad_backward(
    grad_out: npt.ArrayLike, input: npt.ArrayLike, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Array:
    """Gradient of :func:`pad`: ``grad_out`` with the padded border cut off."""
    x = as_float(input, "input")
    widths = _pad_widths(x, pad, "pad_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, tuple(n + before + after for n, (before, after) in zip(x.shape, widths, strict=True)), "pad_backward")
    return g[tuple(slice(before, before + n) for n, (before, _) in zip(x.shape, widths, strict=True))]


# ----------------------------------------------------------------------------- unfold


class _Unfold:
    """Normalised arguments of :func:`unfold`; the output size comes from arith."""

    def __init__(self, x: Array, kernel_size: arith.IntOrPair, dilation: arith.IntOrPair, padding: arith.IntOrPair,
                 stride: arith.IntOrPair, op: str) -> None:
        check_ndim(x, 4, op, "input", "(N, C, H, W)")
        self.kernel = arith.pair(kernel_size, "kernel_size", minimum=1)
        self.dilation = arith.pair(dilation, "dilation", minimum=1)
        self.padding = arith.pair(padding, "padding")
        self.stride = arith.pair(stride, "stride", minimum=1)
        worked = arith.conv_output_worked((x.shape[2], x.shape[3]), self.kernel, self.stride, self.padding, self.dilation)
        self.out: arith.Pair = (worked[0].value, worked[1].value)
        self.torch_pad = (self.padding[1], self.padding[1], self.padding[0], self.padding[0])


def unfold(
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    dilation: arith.IntOrPair = 1,
    padding: arith.IntOrPair = 0,
    stride: arith.IntOrPair = 1,
) -> Array:
    """Every sliding window as a column, as ``torch.nn.functional.unfold``: ``(N, C, H, W) -> (N, C*kh*kw, L)``.

    ``L = H_out * W_out`` windows in row-major order, ``H_out = floor((H + 2p - d(kh - 1) - 1)/s) + 1``;
    rows run over channels, then kernel rows, then kernel columns (im2col).
    """
    x = as_float(input, "input")
    u = _Unfold(x, kernel_size, dilation, padding, stride, "unfold")
    windows = sliding_windows(pad(x, u.torch_pad), u.kernel, u.stride, u.dilation, u.out)  # (N, C, Ho, Wo, kh, kw)
    n, c = x.shape[:2]
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * u.kernel[0] * u.kernel[1], u.out[0] * u.out[1])


def unfold_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    dilation: arith.IntOrPair = 1,
    padding: arith.IntOrPair = 0,
    stride: arith.IntOrPair = 1,
) -> Array:
    """Gradient of :func:`unfold` (torch's ``fold``): each column's cells added back where they came from."""
    x = as_float(input, "input")
    u = _Unfold(x, kernel_size, dilation, padding, stride, "unfold_backward")
    n, c, h, w = x.shape
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (n, c * u.kernel[0] * u.kernel[1], u.out[0] * u.out[1]), "unfold_backward")
    cols = g.reshape(n, c, *u.kernel, *u.out).transpose(0, 1, 4, 5, 2, 3)  # (N, C, Ho, Wo, kh, kw)
    padded = scatter_windows(cols, (h + 2 * u.padding[0], w + 2 * u.padding[1]), u.stride, u.dilation)
    return padded[:, :, u.padding[0] : u.padding[0] + h, u.padding[1] : u.padding[1] + w]


__all__ = ["pad", "pad_backward", "unfold", "unfold_backward"]
