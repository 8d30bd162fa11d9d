"""MobileNet v1 (Howard et al. 2017): a network made of depthwise-separable convolutions.

A depthwise-separable convolution filters each channel on its own (``k*k*C``
weights) and then mixes channels with a 1x1 convolution (``C*C_out``), instead
of ``k*k*C*C_out`` weights for a full convolution: 8 to 9 times fewer for 3x3
filters, the slides' "Depth-wise Separable Convolution".
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.models._common import check_input, positive, probability
from cnnkit.models.registry import register

# (output channels, stride) of the 13 depthwise-separable blocks, table 1 of the paper
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU.

    ``(N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride))``; parameters
    ``3*3*C_in + C_in*C_out`` plus ``2*(C_in + C_out)`` for the batch norms.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.depthwise(x)))  # (N, C_in, H/stride, W/stride): one filter per channel
        return self.relu(self.bn2(self.pointwise(x)))  # (N, C_out, H/stride, W/stride): channels mixed


class MobileNetV1(nn.Module):
    """3x3/2 stem, 13 depthwise-separable blocks, global average pool, dense: ``(N, C, 224, 224) -> (N, num_classes)``."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, dropout: float = 1e-3) -> None:
        super().__init__()
        self.in_channels = in_channels

        def scaled(channels: int) -> int:
            # the width multiplier thins every layer; Keras truncates the same way
            return max(1, int(channels * width))

        channels = scaled(32)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        blocks = []
        for out, stride in MOBILENET_V1_BLOCKS:
            blocks.append(DepthwiseSeparable(channels, scaled(out), stride))
            channels = scaled(out)
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("mobilenet_v1", x, self.in_channels)
        x = self.blocks(self.stem(x))  # (N, 1024*width, H/32, W/32)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))  # (N, 1024*width) -> (N, num_classes)


@register(kind="classification", input_size=(224, 224))
def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, dropout: float = 1e-3) -> nn.Module:
    """MobileNet v1: depthwise-separable convolutions throughout, thinned by the `width` multiplier (alpha).

    ``(N, 3, 224, 224) -> (N, num_classes)``. 4,231,976 parameters at width 1.0
    and 1000 classes (Keras prints 4,253,864: it adds the 21,888 batch-norm
    running statistics); width 0.5 keeps about a third of them.
    """
    positive("mobilenet_v1", "width", width, integer=False)
    return MobileNetV1(num_classes, in_channels, float(width), probability("mobilenet_v1", "dropout", dropout))
