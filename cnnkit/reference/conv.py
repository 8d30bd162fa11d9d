"""Convolution and transposed convolution in NumPy, each with its backward pass.

What CNNs call convolution is cross-correlation (no kernel flip)::

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x_pad[n, g*C_in/G + c, i*s_h + u*d_h, j*s_w + v*d_w]

for output channel ``o`` in group ``g``. The windows are gathered once
(im2col) and multiplied with the flattened filters in one batched matmul per
call, one matrix per group. A transposed convolution is the adjoint of a
convolution, so it reuses the same three kernels with the roles swapped.
"""

from __future__ import annotations

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

# ----------------------------------------------------------------------------- the three kernels


def _im2col(xp: Array, kernel: arith.Pair, stride: arith.Pair, dilation: arith.Pair, out: arith.Pair, groups: int) -> Array:
    """Padded ``(N, C, Hp, Wp)`` -> ``(G, N*H_out*W_out, C/G*kh*kw)``: one row per output cell and group."""
    n, c = xp.shape[:2]
    windows = sliding_windows(xp, kernel, stride, dilation, out)  # (N, C, Ho, Wo, kh, kw)
    grouped = windows.reshape(n, groups, c // groups, *out, *kernel)  # (N, G, C/G, Ho, Wo, kh, kw)
    return grouped.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, n * out[0] * out[1], -1)


def _correlate(xp: Array, weight: Array, stride: arith.Pair, dilation: arith.Pair, groups: int, out: arith.Pair) -> Array:
    """Cross-correlation of a padded input: ``(N, C, Hp, Wp), (O, C/G, kh, kw) -> (N, O, H_out, W_out)``."""
    n, o = xp.shape[0], weight.shape[0]
    cols = _im2col(xp, weight.shape[2:], stride, dilation, out, groups)  # (G, N*Ho*Wo, C/G*kh*kw)
    filters = weight.reshape(groups, o // groups, -1).transpose(0, 2, 1)  # (G, C/G*kh*kw, O/G)
    y = cols @ filters  # (G, N*Ho*Wo, O/G)
    return y.reshape(groups, n, *out, o // groups).transpose(1, 0, 4, 2, 3).reshape(n, o, *out)


def _grad_rows(grad_out: Array, groups: int) -> Array:
    """``(N, O, H_out, W_out) -> (G, N*H_out*W_out, O/G)``, the layout of :func:`_correlate`'s product."""
    n, o, ho, wo = grad_out.shape
    return grad_out.reshape(n, groups, o // groups, ho, wo).transpose(1, 0, 3, 4, 2).reshape(groups, n * ho * wo, o // groups)


def _correlate_weight_grad(
    xp: Array, grad_out: Array, kernel: arith.Pair, stride: arith.Pair, dilation: arith.Pair, groups: int
) -> Array:
    """Gradient of :func:`_correlate` with respect to the weight: ``(O, C/G, kh, kw)``."""
    o = grad_out.shape[1]
    cols = _im2col(xp, kernel, stride, dilation, grad_out.shape[2:], groups)  # (G, N*Ho*Wo, C/G*kh*kw)
    grad = _grad_rows(grad_out, groups).transpose(0, 2, 1) @ cols  # (G, O/G, C/G*kh*kw)
    return grad.reshape(o, xp.shape[1] // groups, *kernel)


def _correlate_input_grad(
    grad_out: Array, weight: Array, padded: arith.Pair, stride: arith.Pair, dilation: arith.Pair, groups: int
) -> Array:
    """Gradient of :func:`_correlate` with respect to its padded input: ``(N, C, Hp, Wp)``."""
    n, _, ho, wo = grad_out.shape
    o, c_per_group, kh, kw = weight.shape
    filters = weight.reshape(groups, o // groups, -1)  # (G, O/G, C/G*kh*kw)
    cols = _grad_rows(grad_out, groups) @ filters  # (G, N*Ho*Wo, C/G*kh*kw)
    windows = cols.reshape(groups, n, ho, wo, c_per_group, kh, kw).transpose(1, 0, 4, 2, 3, 5, 6)
    return scatter_windows(windows.reshape(n, groups * c_per_group, ho, wo, kh, kw), padded, stride, dilation)


# ----------------------------------------------------------------------------- argument checks


def _check_conv_args(
    x: Array, weight: Array, bias: Array | None, groups: int, op: str, *, transposed: bool
) -> None:
    check_ndim(x, 4, op, "input", "(N, C_in, H, W)")
    layout = "(C_in, C_out/groups, kh, kw)" if transposed else "(C_out, C_in/groups, kh, kw)"
    check_ndim(weight, 4, op, "weight", layout)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: `groups` must be a positive int. Received: groups={groups!r}")
    c_in = x.shape[1]
    if transposed:
        if weight.shape[0] != c_in or c_in % groups:
            raise ValueError(
                f"{op}: `weight` must be (C_in, C_out/groups, kh, kw) with C_in (={c_in}) divisible by "
                f"`groups` (={groups}). Received: input shape={x.shape}, weight shape={weight.shape}, groups={groups}"
            )
        c_out = weight.shape[1] * groups
    else:
        c_out = weight.shape[0]
        if c_in % groups or c_out % groups or weight.shape[1] * groups != c_in:
            raise ValueError(
                f"{op}: the input's channels (={c_in}) must equal weight.shape[1] * groups "
                f"(={weight.shape[1]}*{groups}), and C_out (={c_out}) must be divisible by `groups` (={groups}). "
                f"Received: input shape={x.shape}, weight shape={weight.shape}, groups={groups}"
            )
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: `bias` must have shape ({c_out},), one per output channel. Received: bias shape={bias.shape}")


def _prepare(x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None) -> tuple[Array, Array, Array | None]:
    return as_float(x, "input"), as_float(weight, "weight"), None if bias is None else as_float(bias, "bias")


def _conv_geometry(
    x: Array, weight: Array, stride: arith.IntOrPair, padding: arith.PaddingArg, dilation: arith.IntOrPair
) -> tuple[arith.Pair, arith.Pair, Pads, arith.Pair]:
    """Normalised stride and dilation, padding per side, and the output size (from arith)."""
    size, kernel = (x.shape[2], x.shape[3]), (weight.shape[2], weight.shape[3])
    s, d = arith.pair(stride, "stride", minimum=1), arith.pair(dilation, "dilation", minimum=1)
    pads = arith.resolve_padding(padding, size, kernel, s, d)
    out = arith.conv_output_size(size, kernel, s, padding, d)
    return s, d, pads, out


# ----------------------------------------------------------------------------- conv2d


def conv2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: arith.IntOrPair = 1,
    padding: arith.PaddingArg = 0,
    dilation: arith.IntOrPair = 1,
    groups: int = 1,
) -> Array:
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    ``(N, C_in, H, W), (C_out, C_in/groups, kh, kw), (C_out,) -> (N, C_out, H_out, W_out)`` with
    ``H_out = floor((H + 2p - d(kh - 1) - 1)/s) + 1`` (:func:`cnnkit.arith.conv_output_size`).
    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (output ``ceil(H/s)``; the odd pixel
    of padding goes bottom/right, as torch for stride 1 and TensorFlow for any stride).
    ``groups=C_in`` is a depthwise convolution.

    >>> import numpy as np
    >>> conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    x, w, b = _prepare(input, weight, bias)
    _check_conv_args(x, w, b, groups, "conv2d", transposed=False)
    s, d, pads, out = _conv_geometry(x, w, stride, padding, dilation)
    y = _correlate(pad2d(x, pads), w, s, d, groups, out)
    return y if b is None else y + b[:, None, None]


def conv2d_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: arith.IntOrPair = 1,
    padding: arith.PaddingArg = 0,
    dilation: arith.IntOrPair = 1,
    groups: int = 1,
) -> tuple[Array, Array, Array | None]:
    """Gradients of :func:`conv2d`: ``(grad_input, grad_weight, grad_bias)`` (``grad_bias`` is None without bias).

    ``grad_input`` scatters ``grad_out`` back through the filters (a transposed convolution),
    ``grad_weight[o, c] = sum_n, cells grad_out[n, o] * window(x[n, c])`` and
    ``grad_bias[o] = sum grad_out[:, o]``.
    """
    x, w, b = _prepare(input, weight, bias)
    _check_conv_args(x, w, b, groups, "conv2d_backward", transposed=False)
    s, d, pads, out = _conv_geometry(x, w, stride, padding, dilation)
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (x.shape[0], w.shape[0], *out), "conv2d_backward")
    xp = pad2d(x, pads)
    grad_x = crop2d(_correlate_input_grad(g, w, xp.shape[2:], s, d, groups), pads, x.shape[2:])
    grad_w = _correlate_weight_grad(xp, g, w.shape[2:], s, d, groups)
    return grad_x, grad_w, None if b is None else g.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------- conv_transpose2d


def _transpose_geometry(
    x: Array, weight: Array, stride: arith.IntOrPair, padding: arith.IntOrPair, output_padding: arith.IntOrPair,
    dilation: arith.IntOrPair,
) -> tuple[arith.Pair, arith.Pair, Pads, arith.Pair]:
    size, kernel = (x.shape[2], x.shape[3]), (weight.shape[2], weight.shape[3])
    s, d = arith.pair(stride, "stride", minimum=1), arith.pair(dilation, "dilation", minimum=1)
    p = arith.pair(padding, "padding")
    worked = arith.conv_transpose_output_worked(size, kernel, s, p, output_padding, d)
    return s, d, ((p[0], p[0]), (p[1], p[1])), (worked[0].value, worked[1].value)


def conv_transpose2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: arith.IntOrPair = 1,
    padding: arith.IntOrPair = 0,
    output_padding: arith.IntOrPair = 0,
    groups: int = 1,
    dilation: arith.IntOrPair = 1,
) -> Array:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    ``(N, C_in, H, W), (C_in, C_out/groups, kh, kw), (C_out,) -> (N, C_out, H_out, W_out)`` with
    ``H_out = (H - 1)*s - 2p + d(kh - 1) + output_padding + 1``
    (:func:`cnnkit.arith.conv_transpose_output_size`). Each input cell adds ``x * filter``
    into the output at stride ``s``; it is the gradient of :func:`conv2d` with respect to its input.
    """
    x, w, b = _prepare(input, weight, bias)
    _check_conv_args(x, w, b, groups, "conv_transpose2d", transposed=True)
    s, d, pads, out = _transpose_geometry(x, w, stride, padding, output_padding, dilation)
    padded = (out[0] + 2 * pads[0][0], out[1] + 2 * pads[1][0])
    y = crop2d(_correlate_input_grad(x, w, padded, s, d, groups), pads, out)
    return y if b is None else y + b[:, None, None]


def conv_transpose2d_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: arith.IntOrPair = 1,
    padding: arith.IntOrPair = 0,
    output_padding: arith.IntOrPair = 0,
    groups: int = 1,
    dilation: arith.IntOrPair = 1,
) -> tuple[Array, Array, Array | None]:
    """Gradients of :func:`conv_transpose2d`: ``(grad_input, grad_weight, grad_bias)``.

    The adjoint of a transposed convolution is the convolution itself, so
    ``grad_input = conv2d(grad_out, weight)`` with the same stride, padding and dilation.
    """
    x, w, b = _prepare(input, weight, bias)
    _check_conv_args(x, w, b, groups, "conv_transpose2d_backward", transposed=True)
    s, d, pads, out = _transpose_geometry(x, w, stride, padding, output_padding, dilation)
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (x.shape[0], w.shape[1] * groups, *out), "conv_transpose2d_backward")
    gp = pad2d(g, pads)
    size = (x.shape[2], x.shape[3])
    grad_x = _correlate(gp, w, s, d, groups, size)
    # the roles of input and output swap: grad_out plays the convolution's input, x its output gradient
    grad_w = _correlate_weight_grad(gp, x, w.shape[2:], s, d, groups)
    return grad_x, grad_w, None if b is None else g.sum(axis=(0, 2, 3))


__all__ = ["conv2d", "conv2d_backward", "conv_transpose2d", "conv_transpose2d_backward"]
