"""Reading small matrices and stacks of matrices from the command line or from files, and writing them back.

A matrix is given inline, rows separated by ``;`` (or new lines) and entries by
spaces or commas (``"3 0 1; 1 5 8"``), inline as JSON (``"[[3, 0, 1], [1, 5, 8]]"``),
as the path of a ``.json``, ``.csv`` or ``.npy`` file, or as an image file (PNG,
JPEG ...: its grey levels 0-255, at most 64x64 pixels, since every cell gets a step).

A volume ``C x H x W`` (the channels of an RGB input, or one filter) is given the
same ways, inline with channels separated by ``|`` (``"1 2; 3 4 | 5 6; 7 8"``),
as nested JSON lists or ``.npy``, or as a colour image (3 channels, R, G, B).

An entry may be a fraction, as the slides write a blur: ``"1/9 1/9 1/9; ..."`` (also as a JSON
string, ``["1/9", ...]``, or a CSV cell). Text of any length is read inline unless it names a file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from cnnkit.fileio import loads_json
from cnnkit.images import is_image_path, read_image

FILE_SUFFIXES = (".json", ".csv", ".npy")
MAX_IMAGE_PIXELS = 64 * 64  # an explanation writes out every output cell; more would be unreadable
Number = int | float

def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_file(path: Path, name: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"`{name}`: no such file. Received: {name}={str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        return loads_json(text)
    return [[cell.strip() for cell in line.split(",")] for line in text.splitlines() if line.strip()]


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (text too long to be a file name is not one)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def parse_number(text: str) -> float:
    """``"0.5" -> 0.5`` and ``"1/9" -> 0.111...``: a number, or a fraction of two numbers.

    Raises ``ValueError`` for anything else (a zero denominator included).
    """
    numerator, slash, denominator = text.strip().partition("/")
    if not slash:
        return float(numerator)
    top, bottom = float(numerator), float(denominator)
    if bottom == 0:
        raise ValueError(f"the fraction {text.strip()!r} divides by zero")
    return top / bottom


def _numbers(raw: Any) -> Any:
    """Nested lists with every text entry read by :func:`parse_number` (numbers and arrays pass through)."""
    if isinstance(raw, str):
        return parse_number(raw)
    if isinstance(raw, list):
        return [_numbers(item) for item in raw]
    return raw


def _rows(text: str) -> list[list[str]]:
    return [re.split(r"[\s,]+", row.strip()) for row in re.split(r"[;\n]", text) if row.strip()]


def _inline(text: str) -> Any:
    if text.lstrip().startswith("["):
        return loads_json(text)
    if "|" in text:
        return [_rows(channel) for channel in text.split("|")]
    return _rows(text)


def _read(value: str | npt.ArrayLike, name: str, image: Literal["L", "auto"]) -> np.ndarray:
    """Any accepted form as a float64 array of whatever rank it has; images come back ``(H, W)`` or ``(3, H, W)``."""
    received = _received(value, name)
    try:
        if isinstance(value, str) and is_image_path(value):
            pixels = read_image(value.strip(), name, mode=image, max_pixels=MAX_IMAGE_PIXELS)
            raw: Any = pixels if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        elif isinstance(value, str):
            is_path = value.strip().lower().endswith(FILE_SUFFIXES) or _is_file(value)
            raw = _load_file(Path(value.strip()), name) if is_path else _inline(value)
        else:
            raw = value
        array = np.asarray(_numbers(raw), dtype=np.float64)
    except (ValueError, TypeError, RecursionError) as error:
        if isinstance(value, str) and is_image_path(value):
            raise
        raise ValueError(
            f"`{name}` must be a rectangular matrix of numbers or fractions, e.g. \"3 0 1; 1 5 8\", \"1/9 1/9; 1/9 1/9\" or [[3, 0, 1], [1, 5, 8]] "
            f"(channels separated by |) or a .json/.csv/.npy/image file ({error}). {received}"
        ) from error
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"`{name}` must hold finite numbers. {received}")
    return array


def parse_matrix(value: str | npt.ArrayLike, name: str) -> np.ndarray:
    """A 2-D float64 array from inline text, JSON, a ``.json``/``.csv``/``.npy``/image path, or anything array-like.

    Raises ``ValueError`` (``FileNotFoundError`` for a missing file) naming ``name`` and what was received.
    """
    matrix = _read(value, name, "L")
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 2-D matrix. {_received(value, name)} (shape {matrix.shape})")
    return matrix


def _received(value: Any, name: str) -> str:
    return f"Received: {name}={_shorten(value) if isinstance(value, str) else type(value).__name__!r}"


def _as_volume(array: np.ndarray, value: Any, name: str) -> np.ndarray:
    volume = array[None] if array.ndim == 2 else array  # a matrix is one channel: (H, W) -> (1, H, W)
    if volume.ndim != 3 or volume.size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty C x H x W volume (channels separated by |, or nested lists). "
            f"{_received(value, name)} (shape {array.shape})"
        )
    return volume


def parse_volume(value: str | npt.ArrayLike, name: str) -> np.ndarray:
    """A ``(C, H, W)`` float64 array: a matrix is one channel; ``"1 2; 3 4 | 5 6; 7 8"`` is two.

    A colour image gives its three channels R, G, B (a grey one, one channel).
    """
    return _as_volume(_read(value, name, "auto"), value, name)


def parse_filters(values: str | npt.ArrayLike | Sequence[str], name: str) -> np.ndarray:
    """A ``(F, C, kh, kw)`` float64 stack of filters: a 4-D array, or a volume (or matrix) per filter.

    ``values`` is one text or array (4-D: several filters; 3-D or 2-D: one) or a list of texts,
    one filter each (``--kernel`` given several times). All filters must have the same shape.
    """
    if isinstance(values, str):
        items: list[Any] = [values]
    elif isinstance(values, Sequence) and values and all(isinstance(v, str) for v in values):
        items = list(values)
    else:
        items = [values]
    filters: list[np.ndarray] = []
    for item in items:
        array = _read(item, name, "auto")
        if array.ndim == 4 and array.size:
            filters.extend(array)
        else:
            filters.append(_as_volume(array, item, name if len(items) == 1 else f"{name}[{len(filters)}]"))
    for i, f in enumerate(filters):
        if f.shape != filters[0].shape:
            raise ValueError(
                f"`{name}`: every filter must have the shape of the first, {filters[0].shape}. Received: {name}[{i}] shape={f.shape}"
            )
    return np.stack(filters)


def number(value: float) -> Number:
    """``3.0 -> 3`` and ``3.25 -> 3.25``: integers print as integers in text and JSON."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


def to_lists(matrix: np.ndarray) -> list[list[Number]]:
    return [[number(v) for v in row] for row in matrix]


def to_nested(array: npt.ArrayLike) -> Any:
    """Nested lists of :func:`number` of any rank: ``(F, H, W)`` -> ``[[[...]]]``."""
    values = np.asarray(array, dtype=np.float64)
    return number(float(values)) if values.ndim == 0 else [to_nested(part) for part in values]


def inline(matrix: np.ndarray) -> str:
    """``"3 0 1; 1 5 8"``: the inline form the command line accepts."""
    return "; ".join(" ".join(f"{number(v):g}" for v in row) for row in matrix)


def grid(matrix: np.ndarray, indent: str = "  ") -> list[str]:
    """Right-aligned rows, one line each."""
    cells = [[f"{number(v):g}" for v in row] for row in matrix]
    width = max(len(cell) for row in cells for cell in row)
    return [indent + " ".join(cell.rjust(width) for cell in row) for row in cells]
