"""Helpers shared by the reference ops: argument checks, padding, and sliding windows.

Every op works on ``(N, C, H, W)`` arrays. A window view is
``(N, C, H_out, W_out, kh, kw)``: for each output cell, the input cells its
kernel sees. :func:`sliding_windows` builds that view without copying and
:func:`scatter_windows` is its adjoint (it adds each window's cells back where
they came from), which is what every backward pass of a windowed op needs.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from cnnkit import arith

Array: TypeAlias = npt.NDArray[Any]
Pads = tuple[arith.Pair, arith.Pair]  # ((top, bottom), (left, right))


def as_float(value: npt.ArrayLike, name: str) -> Array:
    """``value`` as a floating array: float32/float64 kept, anything else (ints, lists) becomes float64."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be array-like. Received: {name} of type {type(value).__name__}") from error
    if array.dtype.kind == "f":
        return array
    if array.dtype.kind not in "biu":
        raise TypeError(f"`{name}` must hold numbers. Received: {name} with dtype {array.dtype}")
    return array.astype(np.float64)


def check_ndim(array: Array, ndim: int, op: str, name: str, layout: str) -> None:
    """Raise ``ValueError`` unless ``array`` has ``ndim`` dimensions (``layout`` names them, e.g. "(N, C, H, W)")."""
    if array.ndim != ndim:
        raise ValueError(f"{op}: `{name}` must be {ndim}-D {layout}. Received: {name} shape={array.shape}")


def check_same_shape(grad_out: Array, expected: tuple[int, ...], op: str) -> None:
    """Raise ``ValueError`` unless ``grad_out`` has the forward output's shape."""
    if grad_out.shape != tuple(expected):
        raise ValueError(
            f"{op}: `grad_out` must have the forward output's shape {tuple(expected)}. Received: grad_out shape={grad_out.shape}"
        )


def pad2d(x: Array, pads: Pads, value: float = 0.0) -> Array:
    """Pad the last two axes of ``x`` by ``((top, bottom), (left, right))`` with ``value``."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, mode="constant", constant_values=value)


def crop2d(x: Array, pads: Pads, size: arith.Pair) -> Array:
    """Undo :func:`pad2d`: the ``size`` cells after the top/left padding (drops any extra bottom/right rows)."""
    (top, _), (left, _) = pads
    return x[..., top : top + size[0], left : left + size[1]]


def sliding_windows(xp: Array, kernel: arith.Pair, stride: arith.Pair, dilation: arith.Pair, out: arith.Pair) -> Array:
    """Read-only view ``(N, C, H_out, W_out, kh, kw)`` of the windows of an already padded ``(N, C, Hp, Wp)``.

    Window ``(i, j)`` starts at ``(i*s_h, j*s_w)`` and takes every ``d``-th cell
    over a span of ``d*(k - 1) + 1``.
    """
    span = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))  # (N, C, Hp - span_h + 1, Wp - span_w + 1, span_h, span_w)
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]][:, :, : out[0], : out[1]]


def scatter_windows(cols: Array, padded: arith.Pair, stride: arith.Pair, dilation: arith.Pair) -> Array:
    """Adjoint of :func:`sliding_windows`: ``(N, C, H_out, W_out, kh, kw) -> (N, C, Hp, Wp)``, overlaps summed.

    One strided slice-add per kernel tap (``kh*kw`` of them), never a loop over pixels.
    """
    n, c, ho, wo, kh, kw = cols.shape
    result = np.zeros((n, c, *padded), dtype=cols.dtype)
    for i in range(kh):
        top = i * dilation[0]
        for j in range(kw):
            left = j * dilation[1]
            result[:, :, top : top + stride[0] * (ho - 1) + 1 : stride[0], left : left + stride[1] * (wo - 1) + 1 : stride[1]] += cols[
                :, :, :, :, i, j
            ]
    return result
