"""What every look inside a forward pass needs: the tensor in a module's output, and eval mode restored after.

Shared by :mod:`cnnkit.summarize` (the layer table), :mod:`cnnkit.visualize`
(feature maps, Grad-CAM) and :mod:`cnnkit.transfer` (which layers a feature
tap can read). Imports torch only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in a module's input or output (a tensor, or a tuple/list/dict holding some); None if none."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, list | tuple):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return first_tensor(list(value.values()))
    return None


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """``with evaluating(model):`` eval mode (BatchNorm uses its running statistics, no dropout), each module's mode restored after."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes.items():
            module.train(mode)
