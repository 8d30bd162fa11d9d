"""AlexNet and VGG, the ImageNet networks the slides name for transfer learning.

Module and parameter names follow torchvision (``features`` / ``avgpool`` /
``classifier``), so a torchvision state dict loads with ``strict=True``. The
adaptive average pooling lets them take any input from about 64x64 up; at
224x224 it changes nothing. Activations are not in-place, unlike torchvision's:
in-place ReLUs break the backward hooks that Grad-CAM and the explanations use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnkit.models._common import check_input, probability
from cnnkit.models.registry import register

# VGG configurations from Simonyan & Zisserman's table 1: output channels of each 3x3 conv, "M" a 2x2 max pool
VGG_CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-11
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # VGG-16
}


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky et al. 2012) in torchvision's single-GPU form: ``(N, C, 224, 224) -> (N, num_classes)``."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # overlapping pooling, as in the paper
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("alexnet", x, self.in_channels)
        x = self.avgpool(self.features(x))  # (N, 256, 6, 6)
        return self.classifier(torch.flatten(x, 1))  # (N, 9216) -> (N, num_classes)


class VGG(nn.Module):
    """VGG: stacks of 3x3 convolutions (two 3x3 see what one 5x5 sees, with fewer weights) and 2x2 max pools.

    ``(N, C, 224, 224) -> (N, num_classes)``.
    """

    def __init__(self, config: Sequence[int | str], num_classes: int = 1000, in_channels: int = 3,
                 batch_norm: bool = False, dropout: float = 0.5, name: str = "vgg") -> None:
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.features = make_vgg_layers(config, in_channels, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                # a plain VGG does not train from kaiming-scaled dense layers; torchvision's choice
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.name, x, self.in_channels)
        x = self.avgpool(self.features(x))  # (N, 512, 7, 7)
        return self.classifier(torch.flatten(x, 1))  # (N, 25088) -> (N, num_classes)


def make_vgg_layers(config: Sequence[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """The convolutional part of a VGG: 3x3 conv (+ BN) + ReLU per number, 2x2 max pool per "M"."""
    layers: list[nn.Module] = []
    channels = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out = int(item)
        layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        channels = out
    return nn.Sequential(*layers)


@register(kind="classification", input_size=(224, 224))
def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """AlexNet, the 2012 ImageNet winner the slides show as a feature extractor: ReLU, overlapping pooling, dropout.

    ``(N, 3, 224, 224) -> (N, num_classes)``; 61,100,840 parameters at 1000 classes.
    """
    return AlexNet(num_classes, in_channels, probability("alexnet", "dropout", dropout))


@register(kind="classification", input_size=(224, 224))
def vgg11(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """VGG-11 (configuration A): depth built from small 3x3 filters and 2x2 max pools.

    ``(N, 3, 224, 224) -> (N, num_classes)``; 132,863,336 parameters at 1000 classes.
    """
    return VGG(VGG_CONFIGS["A"], num_classes, in_channels, False, probability("vgg11", "dropout", dropout), "vgg11")


@register(kind="classification", input_size=(224, 224))
def vgg16(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """VGG-16 (configuration D), the slides' example of a pretrained backbone for transfer learning.

    ``(N, 3, 224, 224) -> (N, num_classes)``; 138,357,544 parameters at 1000 classes.
    """
    return VGG(VGG_CONFIGS["D"], num_classes, in_channels, False, probability("vgg16", "dropout", dropout), "vgg16")


@register(kind="classification", input_size=(224, 224))
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """VGG-16 with batch normalisation after every convolution.

    ``(N, 3, 224, 224) -> (N, num_classes)``; 138,365,992 parameters at 1000 classes.
    """
    return VGG(VGG_CONFIGS["D"], num_classes, in_channels, True, probability("vgg16_bn", "dropout", dropout), "vgg16_bn")
