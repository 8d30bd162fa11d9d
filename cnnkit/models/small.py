"""Small, fast networks for 28x28 and 32x32 images (Fashion-MNIST, CIFAR-sized data).

Both end in a global average pool, so one network takes 28x28 and 32x32
inputs alike, and both use batch normalisation, which lets them train quickly
at a high learning rate.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.models._common import check_input, positive, probability
from cnnkit.models.registry import register
from cnnkit.models.resnet import BasicBlock, conv3x3, init_resnet, make_stage

RESNET_SMALL_DEPTHS = (8, 14, 20, 32, 44, 56, 110)


class SmallResNet(nn.Module):
    """He et al.'s CIFAR ResNet: 3x3 stem, three stages of ``n`` basic blocks at width w, 2w, 4w, global pool, dense.

    ``(N, C, 28, 28) -> (N, num_classes)``; ``depth = 6n + 2`` weighted layers.
    Where a stage halves the size, the shortcut is a 1x1 convolution + BN
    (the paper's option B).
    """

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.in_channels = in_channels
        blocks = (depth - 2) // 6
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1, channels = make_stage(BasicBlock, width, width, blocks, 1)
        self.layer2, channels = make_stage(BasicBlock, channels, 2 * width, blocks, 2)
        self.layer3, channels = make_stage(BasicBlock, channels, 4 * width, blocks, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        init_resnet(self, zero_init_residual=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("resnet_small", x, self.in_channels)
        x = self.relu(self.bn1(self.conv1(x)))  # (N, w, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 4w, H/4, W/4)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (N, 4w) -> (N, num_classes)


class SmallVGG(nn.Module):
    """Three VGG stages (two 3x3 conv + BN + ReLU, 2x2 max pool) at width w, 2w, 4w; global pool, dropout, dense.

    ``(N, C, 28, 28) -> (N, num_classes)``: 28 -> 14 -> 7 -> 3 (32 -> 16 -> 8 -> 4).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (width, 2 * width, 4 * width):
            for _ in range(2):
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("vgg_small", x, self.in_channels)
        x = self.avgpool(self.features(x))  # (N, 4w, 1, 1)
        return self.classifier(torch.flatten(x, 1))  # (N, 4w) -> (N, num_classes)


@register(kind="classification", input_size=(28, 28))
def resnet_small(num_classes: int = 10, in_channels: int = 1, depth: int = 20, width: int = 16) -> nn.Module:
    """ResNet for small images (ResNet-20 by default; depth 8 trains fastest): shortcuts in a CIFAR-sized network.

    ``(N, 1, 28, 28) -> (N, num_classes)``, also ``(N, 3, 32, 32)`` with
    ``in_channels=3``. ``depth`` is ``6n + 2`` (8, 14, 20, 32, 44, 56, 110);
    ResNet-20 has 272,186 parameters at 1x28x28 and 10 classes.
    """
    if depth not in RESNET_SMALL_DEPTHS:
        raise ValueError(f"resnet_small: `depth` must be 6n + 2, one of {RESNET_SMALL_DEPTHS}. Received: depth={depth!r}")
    return SmallResNet(depth, num_classes, in_channels, int(positive("resnet_small", "width", width)))


@register(kind="classification", input_size=(28, 28))
def vgg_small(num_classes: int = 10, in_channels: int = 1, width: int = 32, dropout: float = 0.3) -> nn.Module:
    """Compact VGG with batch norm: stacked 3x3 convolutions for 28x28 / 32x32 images.

    ``(N, 1, 28, 28) -> (N, num_classes)``, also ``(N, 3, 32, 32)`` with ``in_channels=3``.
    """
    return SmallVGG(num_classes, in_channels, int(positive("vgg_small", "width", width)), probability("vgg_small", "dropout", dropout))


class FastNet(nn.Module):
    """One 3x3 conv + BN + ReLU at full size, then stages of [2x2 max pool, two 3x3 conv + BN + ReLU]; pool, dense.

    ``(N, C, 28, 28) -> (N, num_classes)``: 28 -> 14 -> 7 -> 3, then a global
    average pool. The full-size stage has a single narrow convolution because
    on a CPU its activations, not its arithmetic, cost the time (a second
    16-channel convolution at 28x28 costs as much as widening the next stages
    by half); the width lives at 14x14 and 7x7 instead.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths: tuple[int, ...] = (16, 48, 96)) -> None:
        super().__init__()
        self.in_channels = in_channels
        layers: list[nn.Module] = [*_conv_bn_relu(in_channels, widths[0])]
        channels = widths[0]
        for width in widths[1:]:
            layers += [nn.MaxPool2d(2), *_conv_bn_relu(channels, width), *_conv_bn_relu(width, width)]
            channels = width
        layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("fastnet", x, self.in_channels)
        x = self.avgpool(self.features(x))  # (N, widths[-1], 1, 1)
        return self.fc(torch.flatten(x, 1))  # (N, widths[-1]) -> (N, num_classes)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


@register(kind="classification", input_size=(28, 28))
def fastnet(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> nn.Module:
    """Fast compact VGG-style net with batch norm: the network of ``--recipe fast`` (93% on Fashion-MNIST in 6 epochs).

    ``(N, 1, 28, 28) -> (N, num_classes)``, also ``(N, 3, 32, 32)`` with
    ``in_channels=3``. Channels ``width, 3 * width, 6 * width`` (16, 48, 96:
    153,786 parameters, 11.6 M multiply-accumulates per 28x28 image); six
    epochs take under two minutes on two CPU cores with bf16 and channels-last.
    """
    w = int(positive("fastnet", "width", width))
    return FastNet(num_classes, in_channels, (w, 3 * w, 6 * w))
