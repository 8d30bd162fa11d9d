"""NumPy reference implementations of CNN operations, forward and backward.

Names and signatures copy ``torch.nn.functional`` (``conv2d(input, weight, bias,
stride, padding, dilation, groups)``), so tests pair each op with its torch twin
by name. Arrays are NCHW; integer input becomes float64 and float32/float64 keep
their dtype. Each op ``f`` has ``f_backward(grad_out, *f's arguments)`` right
beside it in the same module, returning the gradient of every array argument
that can have one (a tuple when there are several).

Everything is vectorised (windows gathered with ``sliding_window_view``, then
one matmul), so these functions alone train a small LeNet in seconds; see
``examples/lenet_numpy_digits.py``. Output sizes come from :mod:`cnnkit.arith`.

>>> import numpy as np
>>> from cnnkit import reference as R
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> R.max_pool2d(x, 2).tolist()
[[[[5.0, 7.0], [13.0, 15.0]]]]
"""

from __future__ import annotations

from cnnkit.reference.activations import (
    elu,
    elu_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    maxout,
    maxout_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from cnnkit.reference.conv import conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward
from cnnkit.reference.dense import (
    dropout,
    dropout_backward,
    dropout_mask,
    flatten,
    flatten_backward,
    linear,
    linear_backward,
)
from cnnkit.reference.losses import cross_entropy, cross_entropy_backward, mse_loss, mse_loss_backward
from cnnkit.reference.norm import batch_norm, batch_norm_backward
from cnnkit.reference.pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    min_pool2d,
    min_pool2d_backward,
)
from cnnkit.reference.windows import pad, pad_backward, unfold, unfold_backward

# the forward ops; each has a `<name>_backward` beside it (tests check both exist and pair them with torch)
OPS: tuple[str, ...] = (
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "min_pool2d",
    "adaptive_avg_pool2d",
    "relu",
    "leaky_relu",
    "elu",
    "sigmoid",
    "tanh",
    "maxout",
    "softmax",
    "log_softmax",
    "linear",
    "flatten",
    "dropout",
    "batch_norm",
    "cross_entropy",
    "mse_loss",
    "pad",
    "unfold",
)

__all__ = [
    "OPS",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "elu",
    "elu_backward",
    "flatten",
    "flatten_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "maxout",
    "maxout_backward",
    "min_pool2d",
    "min_pool2d_backward",
    "mse_loss",
    "mse_loss_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
    "unfold",
    "unfold_backward",
]
