"""Readers of the values on a layer-table line: ``text, name -> value`` or ``ValueError`` naming both.

Every reader has the signature of :data:`Reader`, so a word's grammar can list
its arguments as ``(name, reader)`` pairs (see :class:`cnnkit.spec.word.Word`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Pair = tuple[int, int]
Reader = Callable[[str, str], Any]  # (text as written, argument name) -> value


def read_int(text: str, name: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"`{name}` must be a whole number. Received: {name}={text}") from None
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}. Received: {name}={text}")
    return value


def read_pair(text: str, name: str, minimum: int = 0) -> Pair:
    """``5`` or ``5x5`` or ``3x5`` -> (height, width)."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        value = read_int(parts[0], name, minimum)
        return value, value
    if len(parts) == 2:
        return read_int(parts[0], name, minimum), read_int(parts[1], name, minimum)
    raise ValueError(f"`{name}` must be N or HxW, like 5 or 5x5. Received: {name}={text}")


def read_padding(text: str, name: str = "padding") -> Pair | str:
    if text.lower() in ("valid", "same"):
        return text.lower()
    return read_pair(text, name)


def read_float(text: str, name: str, low: float, high: float, *, high_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"`{name}` must be a number. Received: {name}={text}") from None
    if not (low <= value and (value < high if high_open else value <= high)):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"`{name}` must be in {bound}. Received: {name}={text}")
    return value


def read_bool(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise ValueError(f"`{name}` must be true or false. Received: {name}={text}")


def read_shape(text: str, name: str = "input") -> tuple[int, ...]:
    """``3x32x32`` (channels x height x width) or ``400`` (features)."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 3):
        raise ValueError(f"`{name}` must be CxHxW (channels x height x width) or F (features), like 3x32x32. Received: {text}")
    return tuple(read_int(p, name, minimum=1) for p in parts)


def positive_int(text: str, name: str) -> int:
    return read_int(text, name, minimum=1)


def positive_pair(text: str, name: str) -> Pair:
    return read_pair(text, name, minimum=1)
