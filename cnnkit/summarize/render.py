"""A :class:`ModelSummary` as plain text, as a rich table, and as JSON-ready data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnkit.summarize.collect import LayerRow, ModelSummary

COLUMNS = ("Layer", "Type", "Input", "Output", "Kernel", "Stride", "Pad", "Params", "Trainable", "MACs", "RF", "Jump")
NUMERIC = {"Params", "MACs"}


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(str(s) for s in shape) if shape else "?"


def _pair(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GiB"


def _cells(row: LayerRow) -> list[str]:
    indent = "  " * max(row.depth - 1, 0)
    return [indent + row.label, row.type, _shape(row.input_shape), _shape(row.output_shape), row.facts.kernel,
            row.facts.stride, row.facts.padding, f"{row.params:,}", row.trainable,
            f"{row.facts.macs:,}" if row.facts.macs else "", _pair(row.receptive_field), _pair(row.jump)]


def totals_lines(s: ModelSummary) -> list[str]:
    element = s.param_bytes // s.total_params if s.total_params else 4
    return [
        f"Input: {_shape(s.input_shape)} ({s.dtype})",
        f"Total params: {s.total_params:,}",
        f"Trainable params: {s.trainable_params:,}",
        f"Non-trainable params: {s.non_trainable_params:,}",
        f"Total MACs (multiply-accumulates, one input): {s.total_macs:,}",
        f"Parameter memory: {_bytes(s.param_bytes)}",
        f"Activation memory (outputs of all rows, one input): {_bytes(s.activation_values * element)}",
    ]


def formula_lines(s: ModelSummary) -> list[str]:
    lines = []
    for row in s.rows:
        parts = [f"{key} {value}" for key, value in row.facts.formulas.items()]
        parts += row.facts.notes
        if parts:
            lines.append(f"{row.label}: " + "; ".join(parts))
    return lines


def to_text(s: ModelSummary, formulas: bool = True) -> str:
    """A fixed-width table, the totals, and (with ``formulas``) each layer's formulas and the notes."""
    table = [list(COLUMNS)] + [_cells(row) for row in s.rows]
    keep = [i for i in range(len(COLUMNS)) if any(r[i] for r in table[1:]) or COLUMNS[i] in ("Layer", "Params")]
    widths = {i: max(len(r[i]) for r in table) for i in keep}

    def line(cells: list[str]) -> str:
        out = []
        for i in keep:
            right = COLUMNS[i] in NUMERIC
            out.append(cells[i].rjust(widths[i]) if right else cells[i].ljust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "-" * len(line(table[0]))
    text = [f"{s.model_name}", rule, line(table[0]), rule, *[line(r) for r in table[1:]], rule, *totals_lines(s)]
    if formulas:
        worked = formula_lines(s)
        if worked:
            text += ["", "Formulas (numbers filled in):", *[f"  {w}" for w in worked]]
    if s.notes:
        text += ["", "Notes:", *[f"  - {n}" for n in s.notes]]
    return "\n".join(text) + "\n"


def to_rich(s: ModelSummary) -> Any:
    """A rich renderable: the table with totals as its caption, then formulas and notes."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{s.model_name}", caption="\n".join(totals_lines(s)), caption_justify="left")
    rows = [_cells(row) for row in s.rows]
    keep = [i for i in range(len(COLUMNS)) if any(r[i] for r in rows) or COLUMNS[i] in ("Layer", "Params")]
    for i in keep:
        table.add_column(COLUMNS[i], justify="right" if COLUMNS[i] in NUMERIC else "left", no_wrap=COLUMNS[i] == "Layer")
    for r in rows:
        table.add_row(*[r[i] for i in keep])
    parts: list[Any] = [table]
    worked = formula_lines(s)
    if worked:
        parts.append(Text("Formulas (numbers filled in):", style="bold"))
        parts += [Text(f"  {w}") for w in worked]
    if s.notes:
        parts.append(Text("Notes:", style="bold"))
        parts += [Text(f"  - {n}") for n in s.notes]
    return Group(*parts)


def _json_pair(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _numel_or_none(shape: tuple[int, ...] | None) -> int | None:
    if shape is None:
        return None
    result = 1
    for size in shape:
        result *= size
    return result


def as_dict(s: ModelSummary) -> dict[str, Any]:
    """JSON-ready data: totals and one entry per layer; shapes are lists without the batch, ``[C, H, W]`` or ``[F]``."""
    return {
        "model": s.model_name,
        "input_shape": list(s.input_shape),
        "total_params": s.total_params,
        "trainable_params": s.trainable_params,
        "non_trainable_params": s.non_trainable_params,
        "total_macs": s.total_macs,
        "param_bytes": s.param_bytes,
        "activation_values": s.activation_values,
        "buffer_values": s.buffer_values,
        "layers": [
            {
                "name": row.name, "call": row.call, "type": row.type, "depth": row.depth,
                "input_shape": _json_pair(row.input_shape), "output_shape": _json_pair(row.output_shape),
                "kernel": row.facts.kernel or None, "stride": row.facts.stride or None,
                "padding": row.facts.padding or None,
                "activation_size": _numel_or_none(row.output_shape), "weights": row.weights, "biases": row.biases, "params": row.params,
                "trainable": row.trainable or None, "macs": row.facts.macs,
                "receptive_field": _json_pair(row.receptive_field), "jump": _json_pair(row.jump),
                "formulas": dict(row.facts.formulas), "notes": list(row.facts.notes),
                "join": row.join, "skip_from": list(row.skip_from),
            }
            for row in s.rows
        ],
        "notes": list(s.notes),
    }
