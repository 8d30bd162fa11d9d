"""Max, min, average and adaptive average pooling in NumPy, each with its backward pass.

All take ``(N, C, H, W)`` and pool each channel on its own. Output sizes come
from :func:`cnnkit.arith.pool_output_size` (PyTorch's rule, ``stride``
defaulting to the pool size, ``ceil_mode`` dropping a last window that would
start in the right padding).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit.reference._common import (
    Array,
    Pads,
    as_float,
    check_ndim,
    check_same_shape,
    crop2d,
    pad2d,
    scatter_windows,
    sliding_windows,
)


class _PoolGeometry:
    """Normalised pooling arguments; ``pads`` include the extra bottom/right cells that ``ceil_mode`` reads."""

    def __init__(self, x: Array, kernel_size: arith.IntOrPair, stride: arith.IntOrPair | None, padding: arith.IntOrPair,
                 dilation: arith.IntOrPair, ceil_mode: bool, op: str) -> None:
        check_ndim(x, 4, op, "input", "(N, C, H, W)")
        self.size: arith.Pair = (x.shape[2], x.shape[3])
        self.kernel = arith.pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel if stride is None else arith.pair(stride, "stride", minimum=1)
        self.padding = arith.pair(padding, "padding")
        self.dilation = arith.pair(dilation, "dilation", minimum=1)
        worked = arith.pool_output_worked(self.size, self.kernel, self.stride, self.padding, self.dilation, ceil_mode)
        self.out: arith.Pair = (worked[0].value, worked[1].value)
        extra = [
            max((self.out[i] - 1) * self.stride[i] + self.dilation[i] * (self.kernel[i] - 1) + 1 - (self.size[i] + 2 * self.padding[i]), 0)
            for i in range(2)
        ]
        self.pads: Pads = ((self.padding[0], self.padding[0] + extra[0]), (self.padding[1], self.padding[1] + extra[1]))
        self.padded: arith.Pair = (self.size[0] + sum(self.pads[0]), self.size[1] + sum(self.pads[1]))

    def windows(self, x: Array, fill: float) -> Array:
        """``(N, C, H_out, W_out, kh, kw)`` view of ``x`` padded with ``fill``."""
        return sliding_windows(pad2d(x, self.pads, fill), self.kernel, self.stride, self.dilation, self.out)

    def scatter(self, cols: Array) -> Array:
        """Add each window's cells back into an unpadded ``(N, C, H, W)``."""
        return crop2d(scatter_windows(cols, self.padded, self.stride, self.dilation), self.pads, self.size)


# ----------------------------------------------------------------------------- max / min


def max_pool2d(
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    dilation: arith.IntOrPair = 1,
    ceil_mode: bool = False,
) -> Array:
    """Maximum of each window, as ``torch.nn.functional.max_pool2d``: ``(N, C, H, W) -> (N, C, H_out, W_out)``.

    ``H_out = floor((H + 2p - d(k - 1) - 1)/s) + 1``; padded cells are ``-inf`` so they never win.
    """
    x = as_float(input, "input")
    geo = _PoolGeometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    return geo.windows(x, -np.inf).max(axis=(4, 5))


def max_pool2d_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    dilation: arith.IntOrPair = 1,
    ceil_mode: bool = False,
) -> Array:
    """Gradient of :func:`max_pool2d`: each output's gradient goes to its window's maximum.

    On ties the first maximum in row-major window order takes it all, as torch does.
    """
    x = as_float(input, "input")
    geo = _PoolGeometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (*x.shape[:2], *geo.out), "max_pool2d_backward")
    windows = geo.windows(x, -np.inf)
    flat = windows.reshape(*windows.shape[:4], -1)  # (N, C, Ho, Wo, kh*kw)
    winner = flat.argmax(axis=-1)[..., None] == np.arange(flat.shape[-1])  # one-hot of the first maximum
    cols = (winner * g[..., None]).reshape(windows.shape)
    return geo.scatter(cols)


def min_pool2d(
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    dilation: arith.IntOrPair = 1,
    ceil_mode: bool = False,
) -> Array:
    """Minimum of each window, ``min(x) = -max(-x)`` (as :class:`cnnkit.layers.MinPool2d`).

    ``(N, C, H, W) -> (N, C, H_out, W_out)`` with the max-pooling output size; padded cells never win.
    """
    return -max_pool2d(-as_float(input, "input"), kernel_size, stride, padding, dilation, ceil_mode)


def min_pool2d_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    dilation: arith.IntOrPair = 1,
    ceil_mode: bool = False,
) -> Array:
    """Gradient of :func:`min_pool2d`: each output's gradient goes to its window's minimum."""
    # d(-max(-x))/dx: the two sign flips cancel
    return max_pool2d_backward(grad_out, -as_float(input, "input"), kernel_size, stride, padding, dilation, ceil_mode)


# ----------------------------------------------------------------------------- average


def _avg_divisor(geo: _PoolGeometry, count_include_pad: bool, divisor_override: int | None, dtype: np.dtype) -> Array:
    """Per output cell, the number each window sum is divided by (PyTorch's rule), ``(H_out, W_out)``.

    With ``count_include_pad`` the declared padding counts but the extra ``ceil_mode`` cells do not.
    """
    if divisor_override is not None:
        if not isinstance(divisor_override, int) or isinstance(divisor_override, bool) or divisor_override < 1:
            raise ValueError(f"avg_pool2d: `divisor_override` must be a positive int. Received: divisor_override={divisor_override!r}")
        return np.full(geo.out, float(divisor_override), dtype=dtype)
    counted = np.ones((1, 1, *geo.size), dtype=dtype)
    if count_include_pad:
        counted = pad2d(counted, ((geo.padding[0],) * 2, (geo.padding[1],) * 2), 1.0)
        extra = ((0, geo.pads[0][1] - geo.padding[0]), (0, geo.pads[1][1] - geo.padding[1]))
        counted = pad2d(counted, extra, 0.0)
    else:
        counted = pad2d(counted, geo.pads, 0.0)
    return sliding_windows(counted, geo.kernel, geo.stride, geo.dilation, geo.out).sum(axis=(4, 5))[0, 0]


def avg_pool2d(
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """Mean of each window, as ``torch.nn.functional.avg_pool2d``: ``(N, C, H, W) -> (N, C, H_out, W_out)``.

    ``H_out = floor((H + 2p - k)/s) + 1``; padded cells are zeros, counted in the divisor
    only with ``count_include_pad``.
    """
    x = as_float(input, "input")
    geo = _PoolGeometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    sums = geo.windows(x, 0.0).sum(axis=(4, 5))
    return sums / _avg_divisor(geo, count_include_pad, divisor_override, x.dtype)


def avg_pool2d_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: arith.IntOrPair,
    stride: arith.IntOrPair | None = None,
    padding: arith.IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """Gradient of :func:`avg_pool2d`: each output's gradient, divided by its divisor, spread over its window."""
    x = as_float(input, "input")
    geo = _PoolGeometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (*x.shape[:2], *geo.out), "avg_pool2d_backward")
    share = g / _avg_divisor(geo, count_include_pad, divisor_override, x.dtype)  # (N, C, Ho, Wo)
    cols = np.broadcast_to(share[..., None, None], (*share.shape, *geo.kernel))
    return geo.scatter(cols)


# ----------------------------------------------------------------------------- adaptive average


def _adaptive_matrix(size: int, out: int, dtype: np.dtype) -> Array:
    """``(out, size)`` averaging matrix: row ``i`` averages cells ``floor(i*size/out)`` to ``ceil((i+1)*size/out)``."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    cells = np.arange(size)
    inside = (cells >= start[:, None]) & (cells < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _adaptive_matrices(x: Array, output_size: int | tuple[int | None, int | None] | None, op: str) -> tuple[Array, Array]:
    check_ndim(x, 4, op, "input", "(N, C, H, W)")
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != 2:
        raise TypeError(f"{op}: `output_size` must be an int, None or a pair. Received: output_size={output_size!r}")
    # None keeps that side's input size, as torch does
    out = [x.shape[2 + i] if s is None else s for i, s in enumerate(sizes)]
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in out):
        raise ValueError(f"{op}: `output_size` must be positive ints or None. Received: output_size={output_size!r}")
    return _adaptive_matrix(x.shape[2], out[0], x.dtype), _adaptive_matrix(x.shape[3], out[1], x.dtype)


def adaptive_avg_pool2d(input: npt.ArrayLike, output_size: int | tuple[int | None, int | None] | None) -> Array:
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    ``(N, C, H, W) -> (N, C, H_out, W_out)``; output row ``i`` averages input rows
    ``floor(i*H/H_out)`` to ``ceil((i+1)*H/H_out) - 1`` (likewise columns), so
    ``y = A_h @ x @ A_w.T`` with two averaging matrices. ``output_size=1`` is global average pooling.
    """
    x = as_float(input, "input")
    rows, cols = _adaptive_matrices(x, output_size, "adaptive_avg_pool2d")
    return np.einsum("ih,nchw,jw->ncij", rows, x, cols, optimize=True)


def adaptive_avg_pool2d_backward(
    grad_out: npt.ArrayLike, input: npt.ArrayLike, output_size: int | tuple[int | None, int | None] | None
) -> Array:
    """Gradient of :func:`adaptive_avg_pool2d`: ``A_h.T @ grad_out @ A_w``."""
    x = as_float(input, "input")
    rows, cols = _adaptive_matrices(x, output_size, "adaptive_avg_pool2d_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (*x.shape[:2], rows.shape[0], cols.shape[0]), "adaptive_avg_pool2d_backward")
    return np.einsum("ih,ncij,jw->nchw", rows, g, cols, optimize=True)


__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "min_pool2d",
    "min_pool2d_backward",
]
