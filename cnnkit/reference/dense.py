"""Fully connected layer, flatten and dropout in NumPy, each with its backward pass."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit.reference._common import Array, as_float, check_same_shape

# ----------------------------------------------------------------------------- linear


def _linear_args(
    input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None, op: str
) -> tuple[Array, Array, Array | None]:
    x, w = as_float(input, "input"), as_float(weight, "weight")
    b = None if bias is None else as_float(bias, "bias")
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{op}: `weight` must be (out_features, in_features) with in_features equal to the input's last "
            f"dimension. Received: input shape={x.shape}, weight shape={w.shape}"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{op}: `bias` must have shape ({w.shape[0]},), one per output unit. Received: bias shape={b.shape}")
    return x, w, b


def linear(input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None) -> Array:
    """``y = x @ W.T + b``, as ``torch.nn.functional.linear``: ``(*, in), (out, in), (out,) -> (*, out)``.

    ``(in + 1) * out`` parameters (:func:`cnnkit.arith.dense_params`): one bias per output unit.
    """
    x, w, b = _linear_args(input, weight, bias, "linear")
    y = x @ w.T
    return y if b is None else y + b


def linear_backward(
    grad_out: npt.ArrayLike, input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> tuple[Array, Array, Array | None]:
    """Gradients of :func:`linear`: ``(grad_out @ W, grad_out.T @ x, sum of grad_out)``, leading dims summed."""
    x, w, b = _linear_args(input, weight, bias, "linear_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (*x.shape[:-1], w.shape[0]), "linear_backward")
    rows_g, rows_x = g.reshape(-1, w.shape[0]), x.reshape(-1, w.shape[1])  # (M, out), (M, in)
    grad_b = None if b is None else rows_g.sum(axis=0)
    return g @ w, rows_g.T @ rows_x, grad_b


# ----------------------------------------------------------------------------- flatten


def flatten(input: npt.ArrayLike, start_dim: int = 0, end_dim: int = -1) -> Array:
    """Merge dims ``start_dim..end_dim`` into one, as ``torch.flatten``.

    ``(N, C, H, W) -> (N, C*H*W)`` with ``start_dim=1`` (what ``nn.Flatten`` does).
    """
    x = as_float(input, "input")
    if x.ndim == 0:
        return x.reshape(1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: `start_dim` must not come after `end_dim`. Received: start_dim={start_dim}, end_dim={end_dim}")
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])


def flatten_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike, start_dim: int = 0, end_dim: int = -1) -> Array:
    """Gradient of :func:`flatten`: ``grad_out`` reshaped back to the input's shape."""
    x = as_float(input, "input")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, flatten(x, start_dim, end_dim).shape, "flatten_backward")
    return g.reshape(x.shape)


# ----------------------------------------------------------------------------- dropout


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: `p` (the probability of dropping a unit) must be between 0 and 1. Received: p={p}")


def dropout_mask(shape: tuple[int, ...], p: float = 0.5, rng: np.random.Generator | None = None) -> Array:
    """Boolean keep-mask of ``shape``: each unit kept with probability ``1 - p``."""
    _check_p(p, "dropout_mask")
    generator = np.random.default_rng() if rng is None else rng
    return generator.random(shape) >= p


def _scaled_mask(x: Array, p: float, mask: npt.ArrayLike | None, rng: np.random.Generator | None, op: str) -> Array:
    """The keep-mask divided by ``1 - p`` (inverted dropout), drawn from ``rng`` when no mask is given."""
    _check_p(p, op)
    keep = dropout_mask(x.shape, p, rng) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != x.shape:
        raise ValueError(f"{op}: `mask` must have the input's shape {x.shape}. Received: mask shape={keep.shape}")
    # p = 1 drops everything; torch returns zeros rather than dividing by zero
    return np.zeros(x.shape, dtype=x.dtype) if p == 1.0 else keep / np.asarray(1.0 - p, dtype=x.dtype)


def dropout(
    input: npt.ArrayLike,
    p: float = 0.5,
    training: bool = True,
    *,
    mask: npt.ArrayLike | None = None,
    rng: np.random.Generator | None = None,
) -> Array:
    """Inverted dropout, as ``torch.nn.functional.dropout``: ``x * mask / (1 - p)`` in training, ``x`` otherwise.

    ``mask`` (booleans, True = keep, the input's shape) makes the result reproducible; without it one
    is drawn from ``rng`` (see :func:`dropout_mask`). Pass the same mask to :func:`dropout_backward`.
    """
    x = as_float(input, "input")
    if not training:
        return x
    return x * _scaled_mask(x, p, mask, rng, "dropout")


def dropout_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    p: float = 0.5,
    training: bool = True,
    *,
    mask: npt.ArrayLike | None = None,
) -> Array:
    """Gradient of :func:`dropout`: ``grad_out * mask / (1 - p)``; the forward's ``mask`` is required in training."""
    x = as_float(input, "input")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, x.shape, "dropout_backward")
    if not training:
        return g
    if mask is None:
        raise ValueError("dropout_backward: `mask` is required in training, the one the forward pass used. Received: mask=None")
    return g * _scaled_mask(x, p, mask, None, "dropout_backward")


__all__ = ["dropout", "dropout_backward", "dropout_mask", "flatten", "flatten_backward", "linear", "linear_backward"]
