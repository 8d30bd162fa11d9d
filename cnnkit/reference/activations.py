"""Activations in NumPy, each with its backward pass: elementwise, maxout and softmax.

Every ``*_backward(grad_out, input, ...)`` takes the forward's arguments after
``grad_out`` and returns the gradient with respect to ``input`` (same shape).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cnnkit.reference._common import Array, as_float, check_same_shape


def _grad(grad_out: npt.ArrayLike, x: Array, op: str) -> Array:
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, x.shape, op)
    return g


# ----------------------------------------------------------------------------- elementwise


def relu(input: npt.ArrayLike) -> Array:
    """``max(x, 0)``, any shape."""
    x = as_float(input, "input")
    return np.maximum(x, 0)


def relu_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike) -> Array:
    """``grad_out * [x > 0]`` (zero at ``x = 0``, as torch)."""
    x = as_float(input, "input")
    return _grad(grad_out, x, "relu_backward") * (x > 0)


def leaky_relu(input: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    """``x`` for ``x > 0``, else ``negative_slope * x``, any shape."""
    x = as_float(input, "input")
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    """``grad_out`` where ``x > 0``, else ``negative_slope * grad_out``."""
    x = as_float(input, "input")
    return _grad(grad_out, x, "leaky_relu_backward") * np.where(x > 0, 1.0, negative_slope)


def elu(input: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``, any shape."""
    x = as_float(input, "input")
    # expm1 of the clipped value: exp of a large positive x would overflow in the branch np.where discards
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """``grad_out`` where ``x > 0``, else ``grad_out * alpha * exp(x)``."""
    x = as_float(input, "input")
    return _grad(grad_out, x, "elu_backward") * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def sigmoid(input: npt.ArrayLike) -> Array:
    """``1 / (1 + exp(-x))``, any shape, without overflow for large ``|x|``."""
    x = as_float(input, "input")
    # exp of a non-positive number never overflows: use exp(-|x|) on both sides
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike) -> Array:
    """``grad_out * s * (1 - s)`` with ``s = sigmoid(x)``."""
    x = as_float(input, "input")
    s = sigmoid(x)
    return _grad(grad_out, x, "sigmoid_backward") * s * (1 - s)


def tanh(input: npt.ArrayLike) -> Array:
    """``(exp(x) - exp(-x)) / (exp(x) + exp(-x))``, any shape."""
    return np.tanh(as_float(input, "input"))


def tanh_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike) -> Array:
    """``grad_out * (1 - tanh(x)^2)``."""
    x = as_float(input, "input")
    return _grad(grad_out, x, "tanh_backward") * (1 - np.tanh(x) ** 2)


# ----------------------------------------------------------------------------- maxout


def _grouped(x: Array, pieces: int, op: str) -> Array:
    if not isinstance(pieces, int) or isinstance(pieces, bool) or pieces < 1:
        raise ValueError(f"{op}: `pieces` must be a positive int. Received: pieces={pieces!r}")
    if x.ndim < 2 or x.shape[1] % pieces:
        raise ValueError(
            f"{op}: the input's channels (dim 1) must be divisible by `pieces` (={pieces}). Received: input shape={x.shape}"
        )
    return x.reshape(x.shape[0], x.shape[1] // pieces, pieces, *x.shape[2:])  # (N, C/K, K, *)


def maxout(input: npt.ArrayLike, pieces: int) -> Array:
    """Maximum over groups of ``pieces`` consecutive channels: ``(N, C, *) -> (N, C/pieces, *)``.

    The grouping of :class:`cnnkit.layers.Maxout`: output channel ``j`` is
    ``max(x[:, j*K], ..., x[:, j*K + K - 1])``.
    """
    return _grouped(as_float(input, "input"), pieces, "maxout").max(axis=2)


def maxout_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike, pieces: int) -> Array:
    """Gradient of :func:`maxout`: each output's gradient goes to the first channel of its group holding the maximum."""
    x = as_float(input, "input")
    grouped = _grouped(x, pieces, "maxout_backward")
    g = as_float(grad_out, "grad_out")
    check_same_shape(g, (x.shape[0], x.shape[1] // pieces, *x.shape[2:]), "maxout_backward")
    winner = np.expand_dims(grouped.argmax(axis=2), 2) == np.arange(pieces).reshape(1, 1, pieces, *([1] * (x.ndim - 2)))
    return (winner * np.expand_dims(g, 2)).reshape(x.shape)


# ----------------------------------------------------------------------------- softmax


def softmax(input: npt.ArrayLike, dim: int) -> Array:
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``; shifted by the maximum so that ``exp`` never overflows."""
    x = as_float(input, "input")
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike, dim: int) -> Array:
    """``y * (grad_out - sum(grad_out * y, dim))`` with ``y = softmax(x, dim)``."""
    x = as_float(input, "input")
    g = _grad(grad_out, x, "softmax_backward")
    y = softmax(x, dim)
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


def log_softmax(input: npt.ArrayLike, dim: int) -> Array:
    """``x_i - log sum_j exp(x_j)`` along ``dim``, computed stably."""
    x = as_float(input, "input")
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_out: npt.ArrayLike, input: npt.ArrayLike, dim: int) -> Array:
    """``grad_out - softmax(x) * sum(grad_out, dim)``."""
    x = as_float(input, "input")
    g = _grad(grad_out, x, "log_softmax_backward")
    return g - softmax(x, dim) * g.sum(axis=dim, keepdims=True)


__all__ = [
    "elu",
    "elu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "log_softmax",
    "log_softmax_backward",
    "maxout",
    "maxout_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]
