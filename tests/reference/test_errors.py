"""User errors name the op and the argument and end with what was received."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import reference as R

X = np.zeros((1, 4, 6, 6))


def test_conv2d_channel_mismatch() -> None:
    with pytest.raises(ValueError, match=r"conv2d: the input's channels \(=4\) must equal weight.shape\[1\] \* groups \(=3\*1\).*Received: input shape=\(1, 4, 6, 6\)"):
        R.conv2d(X, np.zeros((2, 3, 3, 3)))


def test_conv2d_groups_must_divide_out_channels() -> None:
    with pytest.raises(ValueError, match=r"C_out \(=3\) must be divisible by `groups` \(=2\)"):
        R.conv2d(X, np.zeros((3, 2, 3, 3)), groups=2)


def test_conv2d_bias_shape() -> None:
    with pytest.raises(ValueError, match=r"`bias` must have shape \(2,\).*Received: bias shape=\(3,\)"):
        R.conv2d(X, np.zeros((2, 4, 3, 3)), np.zeros(3))


def test_conv2d_input_must_be_4d() -> None:
    with pytest.raises(ValueError, match=r"`input` must be 4-D \(N, C_in, H, W\). Received: input shape=\(4, 6, 6\)"):
        R.conv2d(X[0], np.zeros((2, 4, 3, 3)))


def test_conv2d_kernel_larger_than_input_uses_arith_message() -> None:
    with pytest.raises(ValueError, match=r"convolution output height would be \(6 \+ 2\*0 - 7\)/1 \+ 1 = 0"):
        R.conv2d(X, np.zeros((1, 4, 7, 7)))


def test_conv2d_bad_padding_string() -> None:
    with pytest.raises(ValueError, match=r"Received: padding='full'"):
        R.conv2d(X, np.zeros((1, 4, 3, 3)), padding="full")


def test_conv2d_backward_grad_out_shape() -> None:
    with pytest.raises(ValueError, match=r"`grad_out` must have the forward output's shape \(1, 2, 4, 4\). Received: grad_out shape=\(1, 2, 6, 6\)"):
        R.conv2d_backward(np.zeros((1, 2, 6, 6)), X, np.zeros((2, 4, 3, 3)))


def test_conv_transpose2d_weight_layout() -> None:
    with pytest.raises(ValueError, match=r"conv_transpose2d: `weight` must be \(C_in, C_out/groups, kh, kw\)"):
        R.conv_transpose2d(X, np.zeros((2, 4, 3, 3)))


def test_non_numeric_input() -> None:
    with pytest.raises(TypeError, match=r"`input` must hold numbers. Received: input with dtype <U1"):
        R.relu(np.array(["a"]))


def test_maxout_pieces_must_divide_channels() -> None:
    with pytest.raises(ValueError, match=r"maxout: the input's channels \(dim 1\) must be divisible by `pieces` \(=3\). Received: input shape=\(1, 4, 6, 6\)"):
        R.maxout(X, 3)


def test_cross_entropy_target_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"`target` indices must be in \[0, 3\). Received: target min=0, max=3"):
        R.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


def test_cross_entropy_float_target() -> None:
    with pytest.raises(TypeError, match=r"`target` must hold integer class indices. Received: target dtype=float64"):
        R.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_dropout_probability_range() -> None:
    with pytest.raises(ValueError, match=r"dropout: `p` .* must be between 0 and 1. Received: p=1.5"):
        R.dropout(X, 1.5)


def test_dropout_backward_needs_the_mask_in_training() -> None:
    with pytest.raises(ValueError, match=r"`mask` is required in training.*Received: mask=None"):
        R.dropout_backward(X, X, 0.5)


def test_batch_norm_eval_needs_running_statistics() -> None:
    with pytest.raises(ValueError, match=r"`running_mean` and `running_var` are required when training=False"):
        R.batch_norm(X, None, None)


def test_pool_padding_at_most_half_the_window() -> None:
    with pytest.raises(ValueError, match=r"pooling: `padding` \(2\) must be at most half the pool size"):
        R.max_pool2d(X, 3, padding=2)


def test_linear_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"linear: `weight` must be \(out_features, in_features\).*Received: input shape=\(2, 5\), weight shape=\(3, 4\)"):
        R.linear(np.zeros((2, 5)), np.zeros((3, 4)))
