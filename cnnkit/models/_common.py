"""Small helpers the zoo's networks share: option checks and input-size checks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
POOLINGS: dict[str, Callable[[int], nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def choice(model: str, option: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else ``ValueError`` naming the model and the option."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{model}: `{option}` must be one of {', '.join(repr(a) for a in allowed)}. Received: {option}={value!r}")
    return value


def positive(model: str, option: str, value: object, *, integer: bool = True) -> float:
    """``value`` if it is a positive int (or number, ``integer=False``), else ``ValueError``."""
    kinds = (int,) if integer else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool) or value <= 0:
        what = "a positive int" if integer else "a positive number"
        raise ValueError(f"{model}: `{option}` must be {what}. Received: {option}={value!r}")
    return value


def probability(model: str, option: str, value: object) -> float:
    """``value`` if it is a number in ``[0, 1)``, else ``ValueError`` (a dropout or noise rate)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{model}: `{option}` must be a number in [0, 1). Received: {option}={value!r}")
    return float(value)


def check_input(model: str, x: torch.Tensor, in_channels: int, size: tuple[int, int] | None = None) -> None:
    """``ValueError`` unless ``x`` is ``(N, in_channels, H, W)`` with ``(H, W) == size`` (when given).

    Networks with a flatten layer are built for one input size; a clear message
    here beats a matrix-shape error deep inside ``nn.Linear``.
    """
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{model} expects (N, {in_channels}, H, W) inputs. Received: input shape={tuple(x.shape)}")
    if size is not None and tuple(x.shape[2:]) != size:
        raise ValueError(
            f"{model} was built for {size[0]}x{size[1]} inputs; create it with input_size=({x.shape[2]}, {x.shape[3]}) "
            f"for these. Received: input shape={tuple(x.shape)}"
        )
