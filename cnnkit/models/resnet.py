"""Residual networks (He et al. 2015): blocks learn ``F(x)`` and output ``relu(F(x) + x)``.

The identity shortcut gives the gradient a path that skips the block, which is
the slides' answer to vanishing gradients in deep networks. Names follow
torchvision (``conv1`` / ``bn1`` / ``layer1..4`` / ``fc``, ``BasicBlock`` and
``Bottleneck`` with ``downsample.0`` / ``.1``) so its state dicts load with
``strict=True``; the stride of a bottleneck sits on its 3x3 convolution
("ResNet v1.5"), as in torchvision. Activations are not in-place (see
:mod:`cnnkit.models.vgg`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnkit.models._common import check_input
from cnnkit.models.registry import register


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (the batch norm after it has one)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias: mixes channels, changes their number."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: ``(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)``."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample  # a 1x1 conv + BN where the shape changes, else the identity
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), and a shortcut: ``(N, C_in, H, W) -> (N, 4*channels, H/stride, W/stride)``."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


def make_stage(block: Block, in_channels: int, channels: int, blocks: int, stride: int) -> tuple[nn.Sequential, int]:
    """``blocks`` residual blocks, the first one with ``stride``; returns the stage and its output channels."""
    out_channels = channels * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    layers: list[nn.Module] = [block(in_channels, channels, stride, downsample)]
    layers += [block(out_channels, channels) for _ in range(1, blocks)]
    return nn.Sequential(*layers), out_channels


def init_resnet(model: nn.Module, zero_init_residual: bool) -> None:
    """He initialisation for convolutions, BN as the identity; optionally each block's last BN at zero.

    A zero last BN makes every block start as the identity, which helps very
    deep networks train (Goyal et al. 2017).
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, Bottleneck):
                nn.init.zeros_(module.bn3.weight)
            elif isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)


class ResNet(nn.Module):
    """ImageNet ResNet: 7x7/2 stem, 3x3/2 max pool, four stages, global average pool, dense.

    ``(N, C, 224, 224) -> (N, num_classes)``; any input from about 32x32 works
    (the network reduces by 32 before the global pooling).
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000, in_channels: int = 3,
                 zero_init_residual: bool = False, name: str = "resnet") -> None:
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        self.layer1, channels = make_stage(block, channels, 64, layers[0], 1)
        self.layer2, channels = make_stage(block, channels, 128, layers[1], 2)
        self.layer3, channels = make_stage(block, channels, 256, layers[2], 2)
        self.layer4, channels = make_stage(block, channels, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        init_resnet(self, zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.name, x, self.in_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512*expansion, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (N, 512*expansion) -> (N, num_classes)


@register(kind="classification", input_size=(224, 224))
def resnet18(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False) -> nn.Module:
    """ResNet-18: residual blocks whose shortcuts let gradients skip layers; basic blocks [2, 2, 2, 2].

    ``(N, 3, 224, 224) -> (N, num_classes)``; 11,689,512 parameters at 1000 classes.
    """
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, zero_init_residual, "resnet18")


@register(kind="classification", input_size=(224, 224))
def resnet34(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False) -> nn.Module:
    """ResNet-34: residual blocks whose shortcuts let gradients skip layers; basic blocks [3, 4, 6, 3].

    ``(N, 3, 224, 224) -> (N, num_classes)``; 21,797,672 parameters at 1000 classes.
    """
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, zero_init_residual, "resnet34")


@register(kind="classification", input_size=(224, 224))
def resnet50(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False) -> nn.Module:
    """ResNet-50: deeper residual network of bottleneck blocks (1x1 reduce, 3x3, 1x1 expand) [3, 4, 6, 3].

    ``(N, 3, 224, 224) -> (N, num_classes)``; 25,557,032 parameters at 1000 classes.
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, zero_init_residual, "resnet50")
