"""A deep plain network and the same network with skip connections: the ResNet slides' comparison, made small.

He et al. (2015) compare "plain" networks with residual networks of the same
depth, width and parameter count. ``plain_deep`` and ``residual_deep`` are that
pair for 28x28 images: a 3x3 stem, three stages of ``n`` blocks of two 3x3
convolutions at width w, 2w, 4w (28 -> 28 -> 14 -> 7), a global average pool
and a dense layer, ``depth = 6n + 2`` weighted layers. The only difference is
``relu(F(x) + x)`` instead of ``relu(F(x))`` in every block; where a stage
halves the size and doubles the channels, the shortcut keeps every second pixel
and appends zero channels (the paper's option A), so both networks have exactly
the same parameters, and built from the same seed, the same initial weights.

By default there is no batch norm and the weights are PyTorch's default
initialisation, as in a network built without either fix: then each layer of
the plain network shrinks the gradient that passes through it, and at depth 20
its first layer gets a gradient millions of times smaller than its last (the
vanishing gradient of the slides); the skips carry the gradient past every
block unchanged. ``cnnkit explain gradients`` measures it. ``batch_norm=True``
adds the other fix, batch normalisation after every convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._common import check_input, positive
from cnnkit.models.registry import register


class PadShortcut(nn.Module):
    """Option A shortcut: every ``stride``-th pixel, then zero channels up to ``out_channels``; no parameters.

    ``(N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.subsample = nn.MaxPool2d(kernel_size=1, stride=stride)  # a 1x1 window: keeps pixels, takes no maximum
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(self.subsample(x), (0, 0, 0, 0, 0, self.extra))  # zeros after the channels: (N, C_out, H', W')


class Block(nn.Module):
    """Two 3x3 convolutions with ReLU: ``relu(F(x))``, or with ``skip`` ``relu(F(x) + shortcut(x))``.

    ``(N, C_in, H, W) -> (N, C_out, H/stride, W/stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, skip: bool, batch_norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.skip = skip
        reshape = stride != 1 or in_channels != out_channels
        self.shortcut = PadShortcut(in_channels, out_channels, stride) if skip and reshape else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.bn1 is not None:
            out = self.bn1(out)
        out = self.conv2(self.relu(out))
        if self.bn2 is not None:
            out = self.bn2(out)
        if self.skip:
            out = out + (x if self.shortcut is None else self.shortcut(x))  # the gradient reaches x unchanged
        return self.relu(out)


class DeepCNN(nn.Module):
    """3x3 stem, three stages of ``(depth - 2) / 6`` blocks at width w, 2w, 4w, global average pool, dense.

    ``(N, C, 28, 28) -> (N, num_classes)`` (any size from 4x4: the pool is global).
    """

    def __init__(self, depth: int, skips: bool, num_classes: int = 10, in_channels: int = 1, width: int = 16,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.name = "residual_deep" if skips else "plain_deep"
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(width) if batch_norm else None
        self.relu = nn.ReLU()
        channels = width
        stages = []
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            layers = []
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(Block(channels, out, stride, skips, batch_norm))
                channels = out
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.name, x, self.in_channels)
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.bn1(x)
        x = self.layer3(self.layer2(self.layer1(self.relu(x))))  # (N, 4w, H/4, W/4)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (N, 4w) -> (N, num_classes)


def _depth(model: str, depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"{model}: `depth` must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, ...). Received: depth={depth!r}")
    return depth


@register(kind="classification", input_size=(28, 28))
def plain_deep(num_classes: int = 10, in_channels: int = 1, depth: int = 20, width: int = 16,
               batch_norm: bool = False) -> nn.Module:
    """Deep plain CNN without skip connections (default 20 layers, no batch norm): the vanishing gradient, measured.

    ``(N, 1, 28, 28) -> (N, num_classes)``; ``depth = 6n + 2``. 268,746
    parameters at depth 20, width 16, 1x28x28 and 10 classes, exactly as
    many as ``residual_deep``.
    """
    return DeepCNN(_depth("plain_deep", depth), False, num_classes, in_channels,
                   int(positive("plain_deep", "width", width)), bool(batch_norm))


@register(kind="classification", input_size=(28, 28))
def residual_deep(num_classes: int = 10, in_channels: int = 1, depth: int = 20, width: int = 16,
                  batch_norm: bool = False) -> nn.Module:
    """``plain_deep`` with a skip connection around every block: same depth, same parameters, gradients that reach the start.

    ``(N, 1, 28, 28) -> (N, num_classes)``; ``depth = 6n + 2``; parameter-free
    shortcuts (option A), so 268,746 parameters at depth 20 and width 16.
    """
    return DeepCNN(_depth("residual_deep", depth), True, num_classes, in_channels,
                   int(positive("residual_deep", "width", width)), bool(batch_norm))
