"""Losses in NumPy, each with its backward pass: cross-entropy on logits and mean squared error."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit.reference._common import Array, as_float, check_same_shape
from cnnkit.reference.activations import log_softmax, softmax

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: `reduction` must be one of {', '.join(_REDUCTIONS)}. Received: reduction={reduction!r}")


def _reduce(values: Array, reduction: str, denominator: float | Array) -> Array:
    if reduction == "none":
        return values
    total = values.sum()
    return np.asarray(total / denominator if reduction == "mean" else total)


# ----------------------------------------------------------------------------- cross-entropy


def _cross_entropy_args(
    input: npt.ArrayLike, target: npt.ArrayLike, weight: npt.ArrayLike | None, reduction: str, label_smoothing: float, op: str
) -> tuple[Array, Array, Array]:
    """Logits ``(N, C, *)``, class indices ``(N, *)`` and per-class weights ``(C,)`` (ones when not given)."""
    _check_reduction(reduction, op)
    x = as_float(input, "input")
    t = np.asarray(target)
    if x.ndim < 2 or t.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(
            f"{op}: `input` must be logits (N, C) or (N, C, *) and `target` class indices (N,) or (N, *). "
            f"Received: input shape={x.shape}, target shape={t.shape}"
        )
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: `target` must hold integer class indices. Received: target dtype={t.dtype}")
    classes = x.shape[1]
    if t.size and (t.min() < 0 or t.max() >= classes):
        raise ValueError(f"{op}: `target` indices must be in [0, {classes}). Received: target min={t.min()}, max={t.max()}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: `label_smoothing` must be between 0 and 1. Received: label_smoothing={label_smoothing}")
    w = np.ones(classes, dtype=x.dtype) if weight is None else as_float(weight, "weight")
    if w.shape != (classes,):
        raise ValueError(f"{op}: `weight` must have shape ({classes},), one per class. Received: weight shape={w.shape}")
    return x, t, w


def _class_view(w: Array, ndim: int) -> Array:
    return w.reshape(1, -1, *([1] * (ndim - 2)))  # (1, C, 1, ...)


def cross_entropy(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """Softmax cross-entropy on logits, as ``torch.nn.functional.cross_entropy`` with class-index targets.

    ``(N, C, *), (N, *) -> ()`` (or ``(N, *)`` with ``reduction="none"``). Per sample, with
    ``log p = log_softmax(x)`` over the classes and smoothing ``e``:
    ``loss = -(1 - e) * w[t] * log p[t] - (e / C) * sum_c w[c] * log p[c]``;
    ``"mean"`` divides the sum by ``sum w[t]`` (the number of samples without weights).
    """
    x, t, w = _cross_entropy_args(input, target, weight, reduction, label_smoothing, "cross_entropy")
    logp = log_softmax(x, 1)
    picked = np.take_along_axis(logp, t[:, None], axis=1)[:, 0]  # (N, *)
    smooth = (logp * _class_view(w, x.ndim)).sum(axis=1)  # (N, *)
    losses = -(1 - label_smoothing) * w[t] * picked - label_smoothing / x.shape[1] * smooth
    return _reduce(losses, reduction, w[t].sum())


def cross_entropy_backward(
    grad_out: npt.ArrayLike,
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    """Gradient of :func:`cross_entropy` with respect to the logits, ``(N, C, *)``.

    Without weights or smoothing this is the familiar ``(softmax(x) - onehot(t)) / N`` for ``"mean"``.
    """
    x, t, w = _cross_entropy_args(input, target, weight, reduction, label_smoothing, "cross_entropy_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, t.shape if reduction == "none" else (), "cross_entropy_backward")
    per_sample = g if reduction == "none" else np.broadcast_to(g / (w[t].sum() if reduction == "mean" else 1), t.shape)
    onehot = np.expand_dims(t, 1) == np.arange(x.shape[1]).reshape(1, -1, *([1] * (x.ndim - 2)))
    grad_logp = -(1 - label_smoothing) * onehot * np.expand_dims(w[t], 1) - label_smoothing / x.shape[1] * _class_view(w, x.ndim)
    grad_logp = grad_logp * np.expand_dims(per_sample, 1)
    # through log_softmax: d/dx = grad_logp - softmax(x) * sum_c grad_logp
    return grad_logp - softmax(x, 1) * grad_logp.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- mean squared error


def _mse_args(input: npt.ArrayLike, target: npt.ArrayLike, reduction: str, op: str) -> tuple[Array, Array]:
    _check_reduction(reduction, op)
    x, y = as_float(input, "input"), as_float(target, "target")
    if x.shape != y.shape:
        raise ValueError(f"{op}: `input` and `target` must have the same shape. Received: input shape={x.shape}, target shape={y.shape}")
    return x, y


def mse_loss(input: npt.ArrayLike, target: npt.ArrayLike, reduction: str = "mean") -> Array:
    """``mean((x - y)^2)`` (or the sum, or elementwise), as ``torch.nn.functional.mse_loss``; any shape."""
    x, y = _mse_args(input, target, reduction, "mse_loss")
    return _reduce((x - y) ** 2, reduction, x.size)


def mse_loss_backward(
    grad_out: npt.ArrayLike, input: npt.ArrayLike, target: npt.ArrayLike, reduction: str = "mean"
) -> tuple[Array, Array]:
    """Gradients of :func:`mse_loss`: ``(grad_input, grad_target)`` with ``grad_input = 2(x - y) * grad_out / M``."""
    x, y = _mse_args(input, target, reduction, "mse_loss_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, x.shape if reduction == "none" else (), "mse_loss_backward")
    scale = g / x.size if reduction == "mean" else g
    grad = 2 * (x - y) * scale
    return grad, -grad


__all__ = ["cross_entropy", "cross_entropy_backward", "mse_loss", "mse_loss_backward"]
