"""A whole layer table: read it, check every layer against its input, and find the shipped examples."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cnnkit.spec.grammar import LayerSpec, SpecError, format_layer, parse_line
from cnnkit.spec.readers import read_shape
from cnnkit.spec.shapes import Shape, output_shape

MAX_TABLE_BYTES = 1_000_000


@dataclass(frozen=True)
class Spec:
    """A checked layer table: the input shape and, for every layer, the shape it outputs."""

    input_shape: Shape  # (C, H, W) or (F,), no batch
    layers: tuple[LayerSpec, ...]
    shapes: tuple[Shape, ...]  # shapes[i] is the output of layers[i]
    path: str = "<table>"

    @property
    def output_shape(self) -> Shape:
        return self.shapes[-1] if self.shapes else self.input_shape

    def to_text(self) -> str:
        """The canonical text of the table (comments dropped, defaults left out)."""
        lines = [f"input {'x'.join(str(s) for s in self.input_shape)}"]
        lines += [format_layer(layer) for layer in self.layers]
        return "\n".join(lines) + "\n"


def parse(text: str, path: str = "<table>", input_shape: Shape | None = None) -> Spec:
    """Read a layer table and check that every layer fits the shape before it.

    ``input_shape`` replaces the table's ``input`` line (and is required when the
    table has none). Raises :class:`SpecError` naming ``path``, the line number,
    the layer and what is wrong.
    """
    table_input: Shape | None = None
    layers: list[LayerSpec] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            layer = parse_line(raw, number)
        except ValueError as error:
            raise SpecError(f"{path}:{number}: `{raw.split('#', 1)[0].strip()}`: {error}") from None
        if layer is None:
            continue
        if layer.kind == "input":
            if table_input is not None or layers:
                raise SpecError(f"{layer.where(path)}: `input` must be the first layer, and appear once")
            table_input = layer.args["shape"]
            continue
        layers.append(layer)
    shape = input_shape if input_shape is not None else table_input
    if shape is None:
        raise SpecError(f"{path}: the table has no `input CxHxW` line; add one (like `input 3x32x32`) or pass --input")
    if not layers:
        raise SpecError(f"{path}: the table has no layers after `input`")
    start = tuple(shape)
    shapes: list[Shape] = []
    for layer in layers:
        try:
            shape = output_shape(layer, shape)
        except ValueError as error:
            raise SpecError(f"{layer.where(path)}: {error}") from None
        shapes.append(shape)
    return Spec(start, tuple(layers), tuple(shapes), path)


def parse_input_shape(text: str) -> Shape:
    """``--input 3x32x32`` -> (3, 32, 32), with a message naming the flag."""
    try:
        return read_shape(text, "--input")
    except ValueError as error:
        raise ValueError(str(error)) from None


def load(path: str | Path, input_shape: Shape | None = None) -> Spec:
    """Read a layer-table file (UTF-8 text); see :func:`parse`."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such layer-table file")
    if file.stat().st_size > MAX_TABLE_BYTES:
        raise SpecError(f"{file}: {file.stat().st_size} bytes is too large for a layer table (at most {MAX_TABLE_BYTES})")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{file}: not a text file (byte {error.start} is not UTF-8); a layer table is plain text") from None
    return parse(text, str(file), input_shape)


def shipped_tables() -> dict[str, str]:
    """Names and texts of the layer tables that ship with cnnkit (``lenet_slides``, ``keras_slides``, ...)."""
    folder = resources.files("cnnkit") / "tables"
    return {entry.name.removesuffix(".txt"): entry.read_text(encoding="utf-8")
            for entry in folder.iterdir() if entry.name.endswith(".txt")}


def load_shipped(name: str, input_shape: Shape | None = None) -> Spec:
    """A shipped table by name; an unknown name suggests the nearest ones."""
    tables = shipped_tables()
    if name not in tables:
        near = difflib.get_close_matches(name, list(tables), n=3, cutoff=0.4)
        hint = f" Did you mean {' or '.join(near)}?" if near else ""
        raise ValueError(f"no shipped layer table named {name!r}.{hint} Shipped: {', '.join(sorted(tables))}")
    return parse(tables[name], f"{name}.txt", input_shape)
