"""The worked-examples file: what each entry holds, checked before anything is computed.

The packaged ``cnnkit/data_files/seed_examples.json`` and a lecturer's own file
(``cnnkit explain example --file my_examples.json``) share this format: a JSON object
with any of these sections (and an optional ``"about"`` text)::

    "convolution": [ {                       # one matrix, or a C x H x W volume with filters
        "id": "rgb-conv-stride2",            # unique; letters, digits, '-', '_' and '.'
        "source": "003 (Stride)",            # where it comes from (default: the file's name)
        "input": [[...]],                    # H x W, or C x H x W
        "kernel": [[...]],                   # kh x kw; C x kh x kw (one filter) or F x C x kh x kw
        "stride": 1, "padding": 0,           # padding: an int, "same" or "valid"
        "bias": 0,                           # one number, or one per filter
        "expected": [[...]],                 # the correct output: H_out x W_out, or F x H_out x W_out
        "slide_shows": [[...]],              # what the slide prints, every cell (optional)
        "slide_cells": [{"row": 0, "col": 0, "value": 4, "where": "..."}],  # or only some cells ("filter" for volumes)
        "slide_variants": [{"where": "...", "kernel": [[...]]}],            # the input or kernel as printed elsewhere
        "slide_error": "...", "notes": ["..."] } ],
    "pooling": [ {
        "id": "...", "source": "...", "input": [[...]], "size": 2, "stride": 2, "padding": 0, "ceil_mode": false,
        "expected_max": [[...]], "expected_average": [[...]], "expected_min": [[...]],   # at least one
        "slide_shows_max": [[...]], ...,     # what the slide prints, per mode
        "expected_flattened": [...],         # the max-pooled map row by row (a Flatten layer)
        "input_from": "rgb-conv-padded",     # the convolution example (same file) whose output this input is
        "slide_error": "...", "notes": ["..."] } ],
    "output_size": {"source": "...", "cases": [{"n": 6, "f": 3, "p": 0, "s": 1, "expected": 4}]},
    "parameters": [ {"id": "lenet-table", ...} ]   # worked by id: see cnnkit.explain.param_examples

Entries of matrices are numbers or fractions written as text (``"1/9"``). A number the
slide prints with ``k`` decimals matches when the computed value rounds to it.

:func:`check_examples` returns the data with every matrix as plain numbers, or raises one
``ValueError`` that names the file, the entry and what is wrong with the received value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit import arith
from cnnkit.explain.matrices import parse_filters, parse_matrix, parse_number, parse_volume, to_nested
from cnnkit.explain.param_examples import PARAMETER_EXAMPLES, PARAMETER_KEYS, SLIDE_WORDS
from cnnkit.fileio import MAX_JSON_BYTES, check_regular, loads_json

SECTIONS = ("convolution", "pooling", "output_size", "parameters")
OUTPUT_SIZE_ID = "output-size"
POOL_EXPECTED = {"max": "expected_max", "avg": "expected_average", "min": "expected_min"}
POOL_PRINTED = {"max": "slide_shows_max", "avg": "slide_shows_average", "min": "slide_shows_min"}
Keys = tuple[set[str], set[str]]  # (required, optional)
CONV_KEYS: Keys = ({"id", "input", "kernel", "expected"},
             {"source", "stride", "padding", "bias", "slide_shows", "slide_cells", "slide_variants", "slide_error", "notes"})
POOL_KEYS: Keys = ({"id", "input", "size"},
             {"source", "stride", "padding", "ceil_mode", *POOL_EXPECTED.values(), *POOL_PRINTED.values(),
              "expected_flattened", "input_from", "slide_error", "notes"})
OUTPUT_SIZE_KEYS: Keys = ({"cases"}, {"source", "formula", "same_padding"})
CASE_KEYS: Keys = ({"n", "f", "p", "s", "expected"}, set())
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class _Entry:
    """Where in the file a value sits, for messages: ``my.json: convolution[2] (id 'edge')``."""

    def __init__(self, origin: str, section: str, index: int | None = None, entry: Any = None) -> None:
        self.where = f"{origin}: {section}" + ("" if index is None else f"[{index}]")
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            self.where += f" (id {entry['id']!r})"

    def error(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: {problem}")


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _keys(entry: Any, keys: Keys, at: _Entry) -> dict[str, Any]:
    required, optional = keys
    if not isinstance(entry, dict):
        raise at.error(f"must be a JSON object. Received: {_shown(entry)}")
    missing = sorted(required - set(entry))
    if missing:
        raise at.error(f"missing {', '.join(f'`{k}`' for k in missing)}. Received keys: {', '.join(sorted(entry)) or 'none'}")
    unknown = sorted(set(entry) - required - optional)
    if unknown:
        raise at.error(f"unknown key(s) {', '.join(f'`{k}`' for k in unknown)}; known: {', '.join(sorted(required | optional))}")
    return entry


def _int(entry: dict[str, Any], key: str, at: _Entry, default: int, minimum: int) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise at.error(f"`{key}` must be an int of at least {minimum}. Received: {key}={_shown(value)}")
    return value


def _text(entry: dict[str, Any], key: str, at: _Entry) -> None:
    if key in entry and not isinstance(entry[key], str):
        raise at.error(f"`{key}` must be text. Received: {key}={_shown(entry[key])}")


def _array(value: Any, key: str, at: _Entry, parse: Callable[[str, str], np.ndarray] = parse_matrix) -> np.ndarray:
    """A matrix (or volume, or stack of filters) from nested JSON lists of numbers or fraction texts."""
    if not isinstance(value, list):
        raise at.error(f"`{key}` must be nested lists of numbers (fractions as text, \"1/9\"). Received: {key}={_shown(value)}")
    try:
        return parse(json.dumps(value), key)
    except (ValueError, TypeError) as error:
        raise at.error(str(error)) from None


def _same_shape(array: np.ndarray, shape: tuple[int, ...], key: str, of: str, at: _Entry) -> None:
    if array.shape != shape:
        raise at.error(f"`{key}` must have the shape of {of}, {shape}. Received: {key} shape={array.shape}")


def _number(value: Any, key: str, at: _Entry) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("not a number")
        number = parse_number(value) if isinstance(value, str) else float(value)
        if not np.isfinite(number):
            raise ValueError("not finite")
    except ValueError:
        raise at.error(f"`{key}` must be a finite number (or a fraction as text, \"1/2\"). Received: {key}={_shown(value)}") from None
    return number


def _slide_cells(entry: dict[str, Any], shape: tuple[int, ...], at: _Entry) -> list[dict[str, Any]]:
    cells = entry["slide_cells"]
    if not isinstance(cells, list):
        raise at.error(f"`slide_cells` must be a list of cells. Received: slide_cells={_shown(cells)}")
    axes = ("filter", "row", "col")[3 - len(shape):]
    out = []
    for i, cell in enumerate(cells):
        name = f"slide_cells[{i}]"
        _keys(cell, ({*axes, "value"}, {"where"}), _Entry(at.where, name))
        for axis, size in zip(axes, shape, strict=True):
            if not isinstance(cell[axis], int) or isinstance(cell[axis], bool) or not 0 <= cell[axis] < size:
                raise at.error(f"`{name}.{axis}` must be an index below {size} (the output's shape is {shape}). "
                               f"Received: {axis}={_shown(cell[axis])}")
        _text(cell, "where", at)
        out.append({**cell, "value": _number(cell["value"], f"{name}.value", at)})
    return out


def _variants(entry: dict[str, Any], x: np.ndarray, w: np.ndarray, matrix: bool, at: _Entry) -> list[dict[str, Any]]:
    """``x`` ``(C, H, W)`` and ``w`` ``(F, C, kh, kw)`` as the example uses them; each variant must have their shape."""
    variants = entry["slide_variants"]
    if not isinstance(variants, list):
        raise at.error(f"`slide_variants` must be a list. Received: slide_variants={_shown(variants)}")
    out = []
    for i, variant in enumerate(variants):
        name = f"slide_variants[{i}]"
        _keys(variant, ({"where"}, {"input", "kernel"}), _Entry(at.where, name))
        _text(variant, "where", at)
        if ("input" in variant) == ("kernel" in variant):
            raise at.error(f"`{name}` must give exactly one of `input` and `kernel`. Received keys: {', '.join(sorted(variant))}")
        what = "input" if "input" in variant else "kernel"
        used = x if what == "input" else w
        shown = _array(variant[what], f"{name}.{what}", at, parse_volume if what == "input" else parse_filters)
        _same_shape(shown, used.shape, f"{name}.{what}", f"`{what}`", at)
        out.append({"where": variant["where"], what: to_nested(shown.reshape(shown.shape[-2:]) if matrix else shown)})
    return out


def _convolution(entry: dict[str, Any], at: _Entry) -> dict[str, Any]:
    _keys(entry, CONV_KEYS, at)
    x = _array(entry["input"], "input", at, parse_volume)  # (C, H, W)
    w = _array(entry["kernel"], "kernel", at, parse_filters)  # (F, C, kh, kw)
    matrix = x.shape[0] == 1 and np.ndim(entry["input"]) == 2 and w.shape[:2] == (1, 1) and np.ndim(entry["kernel"]) == 2
    if w.shape[1] != x.shape[0]:
        raise at.error(f"each filter needs one slice per input channel: the input has {x.shape[0]}, the kernel {w.shape[1]}. "
                       f"Received: input shape={x.shape}, kernel shape={w.shape}")
    stride = _int(entry, "stride", at, 1, 1)
    padding = entry.get("padding", 0)
    if padding not in ("same", "valid") and (not isinstance(padding, int) or isinstance(padding, bool) or padding < 0):
        raise at.error(f"`padding` must be a non-negative int, \"same\" or \"valid\". Received: padding={_shown(padding)}")
    try:
        out = arith.conv_output_size((x.shape[1], x.shape[2]), (w.shape[2], w.shape[3]), stride, padding)
    except ValueError as error:
        raise at.error(str(error)) from None
    bias = entry.get("bias", 0)
    if matrix or not isinstance(bias, list):
        _number(bias, "bias", at)
    elif len(bias) != w.shape[0]:
        raise at.error(f"`bias` must be one number, or one per filter ({w.shape[0]}). Received: bias={_shown(bias)}")
    shape = out if matrix else (w.shape[0], *out)
    parse = parse_matrix if matrix else parse_volume
    expected = _array(entry["expected"], "expected", at, parse)
    _same_shape(expected, shape, "expected", "the output", at)
    checked = {**entry, "input": to_nested(x[0] if matrix else x), "kernel": to_nested(w[0, 0] if matrix else w),
               "expected": to_nested(expected), "stride": stride, "padding": padding}
    if isinstance(bias, list):
        checked["bias"] = [_number(b, "bias", at) for b in bias]
    if "slide_shows" in entry:
        printed = _array(entry["slide_shows"], "slide_shows", at, parse)
        _same_shape(printed, shape, "slide_shows", "the output", at)
        checked["slide_shows"] = to_nested(printed)
    if "slide_cells" in entry:
        checked["slide_cells"] = _slide_cells(entry, shape, at)
    if "slide_variants" in entry:
        checked["slide_variants"] = _variants(entry, x, w, matrix, at)
    return checked


def _pooling(entry: dict[str, Any], at: _Entry, conv_shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    _keys(entry, POOL_KEYS, at)
    x = _array(entry["input"], "input", at)
    size = _int(entry, "size", at, 1, 1)
    stride = size if entry.get("stride") is None else _int(entry, "stride", at, 1, 1)
    padding = _int(entry, "padding", at, 0, 0)
    if not isinstance(entry.get("ceil_mode", False), bool):
        raise at.error(f"`ceil_mode` must be true or false. Received: ceil_mode={_shown(entry['ceil_mode'])}")
    try:
        out = arith.pool_output_size((x.shape[0], x.shape[1]), size, stride, padding, 1, entry.get("ceil_mode", False))
    except ValueError as error:
        raise at.error(str(error)) from None
    modes = [mode for mode, key in POOL_EXPECTED.items() if key in entry]
    if not modes:
        raise at.error(f"give at least one of {', '.join(f'`{k}`' for k in POOL_EXPECTED.values())}")
    checked = {**entry, "input": to_nested(x), "stride": stride, "padding": padding}
    for mode in modes:
        expected = _array(entry[POOL_EXPECTED[mode]], POOL_EXPECTED[mode], at)
        _same_shape(expected, out, POOL_EXPECTED[mode], "the output", at)
        checked[POOL_EXPECTED[mode]] = to_nested(expected)
    for mode, key in POOL_PRINTED.items():
        if key in entry:
            if mode not in modes:
                raise at.error(f"`{key}` needs `{POOL_EXPECTED[mode]}`, the correct result it is compared with")
            printed = _array(entry[key], key, at)
            _same_shape(printed, out, key, "the output", at)
            checked[key] = to_nested(printed)
    if "expected_flattened" in entry:
        if "max" not in modes:
            raise at.error("`expected_flattened` is the max-pooled map row by row: it needs `expected_max`")
        flat = _array([entry["expected_flattened"]], "expected_flattened", at)[0]
        if flat.size != out[0] * out[1]:
            raise at.error(f"`expected_flattened` must hold {out[0]}*{out[1]} = {out[0] * out[1]} numbers. Received: {flat.size}")
        checked["expected_flattened"] = to_nested(flat)
    if "input_from" in entry:
        if entry["input_from"] not in conv_shapes:
            raise at.error(f"`input_from` must name a convolution example of this file. Received: input_from={_shown(entry['input_from'])}")
        if conv_shapes[entry["input_from"]] != x.shape:
            raise at.error(f"`input_from`: the output of {entry['input_from']!r} has the shape "
                           f"{conv_shapes[entry['input_from']]}, the input {x.shape}; they must be the same map")
    return checked


def _output_size(section: Any, at: _Entry) -> dict[str, Any]:
    _keys(section, OUTPUT_SIZE_KEYS, at)
    if not isinstance(section["cases"], list) or not section["cases"]:
        raise at.error(f"`cases` must be a non-empty list. Received: cases={_shown(section['cases'])}")
    for i, case in enumerate(section["cases"]):
        case_at = _Entry(at.where, f"cases[{i}]")
        _keys(case, CASE_KEYS, case_at)
        for key, minimum in (("n", 1), ("f", 1), ("p", 0), ("s", 1), ("expected", 0)):
            _int(case, key, case_at, 0, minimum)
    return section


def _parameters(entry: Any, at: _Entry) -> dict[str, Any]:
    if not isinstance(entry, dict) or entry.get("id") not in PARAMETER_EXAMPLES:
        received = entry.get("id") if isinstance(entry, dict) else entry
        raise at.error(f"a parameter example is worked by its id, one of {', '.join(PARAMETER_EXAMPLES)}. "
                       f"Received: id={_shown(received)}")
    required, optional = PARAMETER_KEYS[entry["id"]]
    _keys(entry, ({"id", *required}, {"source", "slide_error", *optional}), at)
    for key in sorted((required | optional) & set(entry)):
        value = entry[key]
        if key == "layers":
            if not isinstance(value, list) or not all(isinstance(row, dict) and isinstance(row.get("layer"), str) for row in value):
                raise at.error(f"`layers` must be a list of rows, each with a `layer` text. Received: layers={_shown(value)}")
            for i, row in enumerate(value):
                first_word = (row["layer"].split() or [""])[0]
                if first_word not in SLIDE_WORDS:
                    raise at.error(f"`layers[{i}].layer` must start with one of {', '.join(SLIDE_WORDS)}. "
                                   f"Received: layer={_shown(row['layer'])}")
        elif key not in ("input", "layer") and (not isinstance(value, int) or isinstance(value, bool)):
            raise at.error(f"`{key}` must be an int. Received: {key}={_shown(value)}")
    return entry


def check_examples(data: Any, origin: str) -> dict[str, Any]:
    """The examples in ``data`` (a parsed file) with every matrix as numbers; a ``ValueError`` naming ``origin`` and the entry."""
    top = _Entry(origin, "the file")
    if not isinstance(data, dict):
        raise top.error(f"must be a JSON object with any of {', '.join(SECTIONS)}. Received: {_shown(data)}")
    unknown = sorted(set(data) - {*SECTIONS, "about"})
    if unknown:
        raise top.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)} (and about)")
    for section in ("convolution", "pooling", "parameters"):
        if not isinstance(data.get(section, []), list):
            raise _Entry(origin, section).error(f"must be a list of examples. Received: {_shown(data[section])}")
    ids: list[str] = []
    checked: dict[str, Any] = {key: value for key, value in data.items() if key not in SECTIONS}
    for section in ("convolution", "pooling", "parameters"):
        for i, entry in enumerate(data.get(section, [])):
            at = _Entry(origin, section, i, entry)
            if not isinstance(entry, dict):
                raise at.error(f"must be a JSON object (an example). Received: {_shown(entry)}")
            name = entry.get("id")
            if not isinstance(name, str) or not ID_PATTERN.fullmatch(name):
                raise at.error(f"`id` must be a name of letters, digits, '-', '_' and '.'. Received: id={_shown(name)}")
            if name in ids or name == OUTPUT_SIZE_ID:
                raise at.error(f"the id {name!r} is used twice (or reserved): each example needs its own")
            ids.append(name)
            _text(entry, "source", at)
            _text(entry, "slide_error", at)
            if "notes" in entry and not (isinstance(entry["notes"], list) and all(isinstance(n, str) for n in entry["notes"])):
                raise at.error(f"`notes` must be a list of texts. Received: notes={_shown(entry['notes'])}")
    for key, check in (("convolution", _convolution), ("parameters", _parameters)):
        if key in data:
            checked[key] = [{"source": Path(origin).name, **check(entry, _Entry(origin, key, i, entry))}
                            for i, entry in enumerate(data[key])]
    conv_shapes = {e["id"]: np.shape(e["expected"]) for e in checked.get("convolution", [])}
    if "pooling" in data:
        checked["pooling"] = [{"source": Path(origin).name, **_pooling(entry, _Entry(origin, "pooling", i, entry), conv_shapes)}
                              for i, entry in enumerate(data["pooling"])]
    if "output_size" in data:
        checked["output_size"] = {"source": Path(origin).name, **_output_size(data["output_size"], _Entry(origin, "output_size"))}
    if not ids and "output_size" not in data:
        raise top.error(f"holds no examples: give at least one of {', '.join(SECTIONS)}")
    checked["origin"] = origin  # where the set came from, for messages
    return checked


def merge_examples(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two checked sets as one, sections in order; an id in both is a ``ValueError``."""
    names = [e["id"] for key in ("convolution", "pooling", "parameters") for e in first.get(key, [])]
    for key in ("convolution", "pooling", "parameters"):
        for entry in second.get(key, []):
            if entry["id"] in names:
                raise ValueError(f"the example id {entry['id']!r} is in both sets ({entry['source']}); each example needs its own")
    if "output_size" in first and "output_size" in second:
        raise ValueError("both sets hold an output_size section; one set may")
    merged: dict[str, Any] = {key: first.get(key, []) + second.get(key, []) for key in ("convolution", "pooling", "parameters")}
    size = first.get("output_size", second.get("output_size"))
    if size is not None:
        merged["output_size"] = size
    merged["origin"] = f"{first['origin']} and {second['origin']}"
    return merged


def load_example_file(path: str | Path) -> dict[str, Any]:
    """A lecturer's examples file, read and checked (see the module's format); every error names the file."""
    file = Path(path)
    try:
        check_regular(file, MAX_JSON_BYTES)
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"`--file`: no such file. Received: --file={str(path)!r}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        data = loads_json(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    return check_examples(data, str(file))
