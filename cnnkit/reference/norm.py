"""Batch normalisation in NumPy, with its backward pass."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit.reference._common import Array, as_float, check_same_shape


def _channel_view(values: Array, ndim: int) -> Array:
    """``(C,) -> (1, C, 1, ...)``, broadcastable against an ``(N, C, *)`` input."""
    return values.reshape(1, -1, *([1] * (ndim - 2)))


def _check(x: Array, named: dict[str, Array | None], op: str) -> None:
    if x.ndim < 2:
        raise ValueError(f"{op}: `input` must be (N, C) or (N, C, *). Received: input shape={x.shape}")
    for name, value in named.items():
        if value is not None and value.shape != (x.shape[1],):
            raise ValueError(f"{op}: `{name}` must have shape ({x.shape[1]},), one per channel. Received: {name} shape={value.shape}")


def _optional(value: npt.ArrayLike | None, name: str) -> Array | None:
    return None if value is None else as_float(value, name)


def _statistics(
    x: Array, running_mean: Array | None, running_var: Array | None, training: bool, op: str
) -> tuple[Array, Array, tuple[int, ...]]:
    """Mean and biased variance per channel: of the batch in training, the running ones otherwise."""
    axes = (0, *range(2, x.ndim))
    if training:
        if x.size // x.shape[1] < 2:
            raise ValueError(f"{op}: training needs more than one value per channel to compute a variance. Received: input shape={x.shape}")
        return x.mean(axis=axes), x.var(axis=axes), axes
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: `running_mean` and `running_var` are required when training=False. Received: None")
    return running_mean, running_var, axes


def batch_norm(
    input: npt.ArrayLike,
    running_mean: npt.ArrayLike | None,
    running_var: npt.ArrayLike | None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Batch normalisation per channel, as ``torch.nn.functional.batch_norm``: ``(N, C, *) -> (N, C, *)``.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, with the batch's mean and (biased)
    variance over N and the spatial dims in training, the running ones otherwise. In training,
    NumPy arrays passed as ``running_mean``/``running_var`` are updated in place, as torch does:
    ``r = (1 - momentum)*r + momentum*batch`` (the unbiased variance for ``running_var``).
    """
    x = as_float(input, "input")
    rm, rv = _optional(running_mean, "running_mean"), _optional(running_var, "running_var")
    w, b = _optional(weight, "weight"), _optional(bias, "bias")
    _check(x, {"running_mean": rm, "running_var": rv, "weight": w, "bias": b}, "batch_norm")
    mean, var, _ = _statistics(x, rm, rv, training, "batch_norm")
    if training:
        count = x.size // x.shape[1]
        # in place so that the caller's arrays carry the statistics on, like torch's buffers
        if isinstance(running_mean, np.ndarray):
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if isinstance(running_var, np.ndarray):
            running_var *= 1 - momentum
            running_var += momentum * var * count / (count - 1)
    y = (x - _channel_view(mean, x.ndim)) / np.sqrt(_channel_view(var, x.ndim) + eps)
    if w is not None:
        y = y * _channel_view(w, x.ndim)
    return y if b is None else y + _channel_view(b, x.ndim)


def batch_norm_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    running_mean: npt.ArrayLike | None,
    running_var: npt.ArrayLike | None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array | None, Array | None]:
    """Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)`` (None where absent).

    In training the batch statistics depend on ``x``, so with ``M`` values per channel and
    ``dxhat = grad_out * weight``:
    ``grad_x = (M*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat)) / (M * sqrt(var + eps))``.
    Running statistics are not touched.
    """
    x = as_float(input, "input")
    rm, rv = _optional(running_mean, "running_mean"), _optional(running_var, "running_var")
    w, b = _optional(weight, "weight"), _optional(bias, "bias")
    _check(x, {"running_mean": rm, "running_var": rv, "weight": w, "bias": b}, "batch_norm_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, x.shape, "batch_norm_backward")
    mean, var, axes = _statistics(x, rm, rv, training, "batch_norm_backward")
    inv_std = _channel_view(1 / np.sqrt(var + eps), x.ndim)
    xhat = (x - _channel_view(mean, x.ndim)) * inv_std
    dxhat = g if w is None else g * _channel_view(w, x.ndim)
    if training:
        count = x.size // x.shape[1]
        total = dxhat.sum(axis=axes, keepdims=True)
        along = (dxhat * xhat).sum(axis=axes, keepdims=True)
        grad_x = (count * dxhat - total - xhat * along) * inv_std / count
    else:
        grad_x = dxhat * inv_std
    grad_w = None if w is None else (g * xhat).sum(axis=axes)
    grad_b = None if b is None else g.sum(axis=axes)
    return grad_x, grad_w, grad_b


__all__ = ["batch_norm", "batch_norm_backward"]
