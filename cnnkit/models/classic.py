"""The slides' own small networks: LeNet-5 and the Keras example.

Both end in a flatten layer, so they are built for one input size; the size of
the flattened vector comes from :mod:`cnnkit.arith`, never by hand.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit import arith
from cnnkit.models._common import ACTIVATIONS, POOLINGS, check_input, choice, probability
from cnnkit.models.registry import register


class FlattenNet(nn.Module):
    """``features`` (convolutions and pooling), flatten, ``classifier`` (dense layers), for one input size.

    ``(N, C, H, W) -> (N, num_classes)`` logits (softmax belongs to the loss);
    any other ``(H, W)`` than the one it was built for raises ``ValueError``.
    """

    def __init__(self, name: str, features: nn.Sequential, classifier: nn.Sequential, in_channels: int,
                 input_size: tuple[int, int]) -> None:
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.input_size = input_size
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self.name, x, self.in_channels, self.input_size)
        x = self.features(x)  # (N, C_last, H_last, W_last)
        return self.classifier(torch.flatten(x, 1))  # (N, C_last*H_last*W_last) -> (N, num_classes)


def _halved(size: arith.Pair) -> arith.Pair:
    """Output size of a 2x2 pool with stride 2: ``floor(n/2)`` per side."""
    height, width = arith.pool_output_worked(size, 2)
    return height.value, width.value


@register(kind="classification", input_size=(32, 32))
def lenet5(num_classes: int = 10, in_channels: int = 3, input_size: arith.IntOrPair = 32,
           activation: str = "relu", pooling: str = "max") -> nn.Module:
    """LeNet-5 as the slides' "CNN Example # 2": conv 6@5x5, pool 2, conv 16@5x5, pool 2, dense 120, 84, classes.

    ``(N, 3, 32, 32) -> (N, num_classes)``. 62,006 parameters at 3x32x32 and
    10 classes (the slide's 61,795 counts one bias per dense layer instead of
    one per unit). ``input_size=28, in_channels=1`` gives the Fashion-MNIST
    version (flatten 16x4x4 = 256). ``activation``: 'relu', 'tanh' or 'sigmoid'
    (LeCun's original used tanh-like squashing); ``pooling``: 'max' or 'avg'
    (the original subsampled by averaging).
    """
    size = arith.pair(input_size, "input_size", minimum=1)
    act = ACTIVATIONS[choice("lenet5", "activation", activation, tuple(ACTIVATIONS))]
    pool = POOLINGS[choice("lenet5", "pooling", pooling, tuple(POOLINGS))]
    # valid 5x5 convolutions and 2x2 pools: 32 -> 28 -> 14 -> 10 -> 5
    out = _halved(arith.conv_output_size(_halved(arith.conv_output_size(size, 5)), 5))
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5), act(), pool(2),
        nn.Conv2d(6, 16, 5), act(), pool(2),
    )
    classifier = nn.Sequential(
        nn.Linear(16 * out[0] * out[1], 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )
    return FlattenNet("lenet5", features, classifier, in_channels, size)


@register(kind="classification", input_size=(150, 150))
def keras_example(num_classes: int = 10, in_channels: int = 1, input_size: arith.IntOrPair = 150,
                  dropout: float = 0.25, dense_dropout: float = 0.5) -> nn.Module:
    """The slides' Keras model ("Example Network Setup"): feature maps grow 32 -> 64 while they shrink 148 -> 16.

    ``(N, 1, 150, 150) -> (N, num_classes)``: conv 32 3x3, maxpool 2, conv 32
    3x3, maxpool 2, conv 64 3x3, conv 64 3x3, maxpool 2, dropout, flatten
    (64x16x16 = 16,384), dense 512, dropout, dense 10. 8,459,242 parameters,
    8,389,120 of them in the first dense layer: the slides' "many parameters".
    """
    size = arith.pair(input_size, "input_size", minimum=1)
    rate, dense_rate = probability("keras_example", "dropout", dropout), probability("keras_example", "dense_dropout", dense_dropout)
    out = _halved(arith.conv_output_size(size, 3))  # 150 -> 148 -> 74
    out = _halved(arith.conv_output_size(out, 3))  # 74 -> 72 -> 36
    out = _halved(arith.conv_output_size(arith.conv_output_size(out, 3), 3))  # 36 -> 34 -> 32 -> 16
    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(rate),
    )
    classifier = nn.Sequential(
        nn.Linear(64 * out[0] * out[1], 512), nn.ReLU(), nn.Dropout(dense_rate),
        nn.Linear(512, num_classes),
    )
    return FlattenNet("keras_example", features, classifier, in_channels, size)
