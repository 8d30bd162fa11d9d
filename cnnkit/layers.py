"""The few layers the slides teach that ``torch.nn`` lacks.

Each is a plain ``nn.Module`` that works anywhere a torch layer does; the
spec format, the summary and the zoo use them by name.
"""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit import arith


class MinPool2d(nn.Module):
    """Minimum over each window: ``(N, C, H, W) -> (N, C, H_out, W_out)``.

    ``min(x) = -max(-x)``, so the output size follows the max-pooling rule
    (:func:`cnnkit.arith.pool_output_size`); ``stride`` defaults to the pool size.
    """

    def __init__(self, kernel_size: arith.IntOrPair, stride: arith.IntOrPair | None = None, padding: arith.IntOrPair = 0,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = arith.pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else arith.pair(stride, "stride", minimum=1)
        self.padding = arith.pair(padding, "padding")
        self.ceil_mode = ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # padded cells must never win: -max(-x) pads -x with -inf, i.e. x with +inf
        return -F.max_pool2d(-x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, ceil_mode={self.ceil_mode}"


class Maxout(nn.Module):
    """Maxout with ``pieces`` linear pieces: the maximum over groups of ``pieces`` consecutive channels.

    ``(N, C, *) -> (N, C / pieces, *)``: put it after a ``dense``/``conv`` layer with
    ``pieces`` times the units you want; ``max(w1.x + b1, w2.x + b2)`` is maxout with 2 pieces.
    """

    def __init__(self, pieces: int) -> None:
        super().__init__()
        if not isinstance(pieces, int) or isinstance(pieces, bool) or pieces < 1:
            raise ValueError(f"maxout: `pieces` must be a positive int. Received: pieces={pieces!r}")
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        if channels % self.pieces:
            raise ValueError(
                f"maxout: the input's {channels} channels must be divisible by `pieces` (={self.pieces}). "
                f"Received: input shape={tuple(x.shape)}"
            )
        grouped = x.reshape(x.shape[0], channels // self.pieces, self.pieces, *x.shape[2:])  # (N, C/K, K, *)
        return grouped.amax(dim=2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class GlobalAvgPool2d(nn.Module):
    """Average of each whole feature map: ``(N, C, H, W) -> (N, C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class SeparableConv2d(nn.Module):
    """Depthwise-separable convolution: one ``k x k`` filter per input channel, then a 1x1 convolution.

    ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)`` with the output size of the
    depthwise step. Parameters ``kh*kw*C_in*M + (C_in*M + 1)*C_out``
    (:func:`cnnkit.arith.separable_params`); the bias sits on the pointwise step, as in Keras.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: arith.IntOrPair, stride: arith.IntOrPair = 1,
                 padding: arith.PaddingArg = 0, dilation: arith.IntOrPair = 1, depth_multiplier: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        mid = in_channels * depth_multiplier
        k, s, d = arith.pair(kernel_size, "kernel_size", minimum=1), arith.pair(stride, "stride", minimum=1), \
            arith.pair(dilation, "dilation", minimum=1)
        self.depthwise: nn.Conv2d
        if padding == "same" and s != (1, 1):
            self.depthwise = Conv2dSame(in_channels, mid, k, s, "same", d, groups=in_channels, bias=False)
        else:
            pad = padding if isinstance(padding, str) else arith.pair(padding, "padding")
            self.depthwise = nn.Conv2d(in_channels, mid, k, s, pad, d, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Conv2dSame(nn.Conv2d):
    """A ``Conv2d`` with TensorFlow's "same" padding, for any stride: output ``ceil(n / s)`` per side.

    The zero padding is computed from each input's size and may be asymmetric
    (the odd pixel goes bottom/right, :func:`cnnkit.arith.same_padding`), which
    is what weights trained in TensorFlow (EfficientNet-Lite) expect.
    ``torch.nn.Conv2d(padding="same")`` only allows stride 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: arith.IntOrPair, stride: arith.IntOrPair = 1,
                 padding: str = "same", dilation: arith.IntOrPair = 1, groups: int = 1, bias: bool = True) -> None:
        if padding != "same":
            raise ValueError(f"Conv2dSame only does padding='same'. Received: padding={padding!r}")
        super().__init__(in_channels, out_channels, arith.pair(kernel_size, "kernel_size", minimum=1),
                         stride=arith.pair(stride, "stride", minimum=1), padding=0,
                         dilation=arith.pair(dilation, "dilation", minimum=1), groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = arith.same_padding(
            (int(x.shape[-2]), int(x.shape[-1])), self.kernel_size, self.stride, self.dilation
        )
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


_Module = TypeVar("_Module", bound=nn.Module)


class _FrozenStatistics(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation that always uses its running statistics and never changes them.

    ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`` in
    training and in evaluation alike: the module cannot be put in training mode
    (``train()`` leaves it in eval), and its forward never passes
    ``training=True`` to the kernel, so no call path can move the statistics.
    ``weight`` and ``bias`` stay ordinary parameters, trainable or not.

    Freezing a network's first layers without this is the classic transfer
    mistake: ``requires_grad=False`` stops the gradient, but a plain BatchNorm
    in a model put in ``train()`` mode keeps replacing its statistics with
    those of the new data's batches.
    """

    def train(self: _Module, mode: bool = True) -> _Module:
        return nn.Module.train(self, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class FrozenBatchNorm1d(_FrozenStatistics, nn.BatchNorm1d):
    """:class:`nn.BatchNorm1d` with frozen statistics: ``(N, C)`` or ``(N, C, L)`` -> same shape."""


class FrozenBatchNorm2d(_FrozenStatistics, nn.BatchNorm2d):
    """:class:`nn.BatchNorm2d` with frozen statistics: ``(N, C, H, W)`` -> same shape."""


FROZEN_BATCHNORMS = (FrozenBatchNorm1d, FrozenBatchNorm2d)


def freeze_statistics(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> FrozenBatchNorm1d | FrozenBatchNorm2d:
    """A frozen-statistics twin of ``bn`` that shares its parameter and buffer tensors (nothing is copied).

    Put it in ``bn``'s place; the state-dict keys stay the same, so weights load
    into either. A BatchNorm without running statistics (``track_running_stats=False``)
    has nothing to freeze: ``ValueError``.
    """
    if isinstance(bn, FROZEN_BATCHNORMS):
        return bn
    if not bn.track_running_stats or bn.running_mean is None:
        raise ValueError(f"{type(bn).__name__}({bn.num_features}) normalises by each batch's own statistics "
                         f"(track_running_stats=False): there are no running statistics to freeze")
    kind = FrozenBatchNorm2d if isinstance(bn, nn.BatchNorm2d) else FrozenBatchNorm1d
    with torch.device("meta"):  # placeholders only: the tensors of `bn` replace them below
        frozen = kind(bn.num_features, bn.eps, bn.momentum, bn.affine, True)
    if bn.affine:
        frozen.weight, frozen.bias = bn.weight, bn.bias
    frozen.running_mean, frozen.running_var = bn.running_mean, bn.running_var
    frozen.num_batches_tracked = bn.num_batches_tracked
    frozen.eval()
    return frozen
