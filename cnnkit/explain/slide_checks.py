"""What a slide prints, set against what the computation it describes gives.

Three findings, each cell by cell with the arithmetic:

* a **misprint**: the slide prints another number than its own input gives;
* through a misprinted input (a pooling slide that pools an earlier slide's wrong feature
  map): a printed number that follows from the misprinted map is **inherited**, one that
  follows from neither the printed map nor the correctly computed one is **inconsistent**;
* a **variant**: the deck prints the input or the kernel differently on another slide; the
  finding says where they differ, what the output would be, and which printed numbers
  follow from the one used here rather than from the variant.

A printed number with ``k`` decimals matches a computed one that rounds to it (``0.11`` matches
``1/9``); an integer must match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit.explain.matrices import inline, number, to_nested
from cnnkit.explain.steps import Explanation, cell_text


@dataclass(frozen=True)
class PrintedCell:
    """One number a slide prints: where in the output (``(row, col)`` or ``(filter, row, col)``), the value, the slide."""

    index: tuple[int, ...]
    value: float
    where: str | None = None


def decimals(value: float) -> int:
    """Digits after the point as written: ``3.25 -> 2``, ``370.0 -> 0``."""
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def same_as_printed(printed: float, computed: float) -> bool:
    """Whether ``computed`` rounds to ``printed`` at the digits ``printed`` shows (an integer must be exact)."""
    places = decimals(printed)
    tolerance = 0.5 * 10.0 ** -places if places else 0.0
    return bool(abs(float(computed) - float(printed)) <= tolerance + 1e-9 * max(1.0, abs(float(printed))))


def all_same_as_printed(printed: npt.ArrayLike, computed: npt.ArrayLike) -> bool:
    """:func:`same_as_printed` for every cell of two arrays of one shape (another shape: ``False``)."""
    p, c = np.asarray(printed, dtype=np.float64), np.asarray(computed, dtype=np.float64)
    return p.shape == c.shape and all(same_as_printed(a, b) for a, b in zip(p.ravel(), c.ravel(), strict=True))


def printed_cells(full: Any = None, cells: list[dict[str, Any]] | None = None) -> list[PrintedCell]:
    """The numbers a slide prints: every cell of ``full`` (a matrix or ``F x H x W``), then the listed ``cells``."""
    out = []
    if full is not None:
        out += [PrintedCell(tuple(int(i) for i in index), float(v)) for index, v in np.ndenumerate(np.asarray(full, dtype=np.float64))]
    for cell in cells or []:
        index = tuple(int(cell[axis]) for axis in ("filter", "row", "col") if axis in cell)
        out.append(PrintedCell(index, float(cell["value"]), cell.get("where")))
    return out


def _key(step: dict[str, Any]) -> tuple[int, ...]:
    return (step["filter"], step["row"], step["col"]) if "filter" in step else (step["row"], step["col"])


def _step_text(step: dict[str, Any]) -> str:
    if "window" in step:
        return cell_text(step)
    windows = " | ".join(inline(np.asarray(ch["window"], dtype=np.float64)) for ch in step["channels"])
    return f"filter {step['filter']}, row {step['row']}, column {step['col']}: the windows [{windows}]"


def _at(step: dict[str, Any]) -> dict[str, int]:
    return {"filter": step["filter"], "row": step["row"], "col": step["col"]} if "filter" in step else {"row": step["row"], "col": step["col"]}


def conv_differences(steps: list[dict[str, Any]], printed: list[PrintedCell]) -> list[dict[str, Any]]:
    """Every printed cell that differs from the computed one: the correct value, the window and the arithmetic."""
    by_cell = {_key(step): step for step in steps}
    found = []
    for cell in printed:
        step = by_cell[cell.index]
        if same_as_printed(cell.value, step["value"]):
            continue
        shown = number(cell.value)
        entry: dict[str, Any] = {**_at(step), "slide_shows": shown, "correct": step["value"], "kind": "misprint",
                                 "why": f"{_step_text(step)} gives {step['expression']}, the slide prints {shown}"}
        if "window" in step:
            entry["window"] = step["window"]
        if cell.where:
            entry["where"] = cell.where
        found.append(entry)
    return found


def _window(step: dict[str, Any]) -> str:
    return f"[{inline(np.asarray(step['window'], dtype=np.float64))}]"


def pool_differences(own: Explanation, correct: Explanation, printed: list[PrintedCell], mode: str) -> list[dict[str, Any]]:
    """Printed pooling cells against the slide's own input (``own``) and the correctly computed input (``correct``).

    Where both inputs are the same, a differing cell is a misprint; otherwise a printed number that
    only the misprinted input gives is inherited, and one that the printed input does not give is
    inconsistent (it follows from neither, or from the correct map but not from the map the slide prints).
    """
    chained = not np.array_equal(own.input, correct.input)
    mine, right = {_key(s): s for s in own.steps}, {_key(s): s for s in correct.steps}
    found = []
    for cell in printed:
        o, c, shown = mine[cell.index], right[cell.index], number(cell.value)
        if same_as_printed(cell.value, o["value"]) and same_as_printed(cell.value, c["value"]):
            continue
        place = f"row {o['row']}, column {o['col']}"
        if o["value"] == c["value"]:
            kind, why = "misprint", f"{cell_text(o)} gives {o['expression']}, the slide prints {shown}"
        elif same_as_printed(cell.value, o["value"]):
            kind = "inherited"
            why = (f"{place}: the slide's own (misprinted) map gives {o['expression']}, as printed; the correctly "
                   f"computed map's window {_window(c)} gives {c['expression']}")
        elif same_as_printed(cell.value, c["value"]):
            kind = "unfollowed"  # right, but not what the slide's own (misprinted) map gives
            why = (f"{place}: the slide prints {shown}, what the correctly computed map gives ({c['expression']}), but its "
                   f"own map's window {_window(o)} gives {o['expression']}: the result does not follow from the map it prints")
        else:
            kind = "inconsistent"
            why = (f"{place}: the slide prints {shown}, which follows from neither its own map (the window {_window(o)} gives "
                   f"{o['expression']}) nor the correctly computed map (the window {_window(c)} gives {c['expression']}): "
                   f"the slide is internally inconsistent")
        entry = {"row": o["row"], "col": o["col"], "mode": mode, "slide_shows": shown, "correct": c["value"],
                 "window": c["window"], "kind": kind, "why": why}
        if chained:
            entry["from_slide_input"] = o["value"]
        found.append(entry)
    return found


def position(index: tuple[int, ...], axes: tuple[str, ...]) -> str:
    """``(1, 2)`` with ``("row", "column")`` -> ``"row 1, column 2"``."""
    return ", ".join(f"{axis} {i}" for axis, i in zip(axes[len(axes) - len(index):], index, strict=True))


WEIGHT_AXES = ("filter", "channel", "row", "column")
OUTPUT_AXES = ("map", "row", "column")


def _matrices(array: np.ndarray) -> str:
    return inline(array) if array.ndim == 2 else " | ".join(inline(m) for m in array)


def variant_finding(variant: dict[str, Any], used: npt.ArrayLike, output: np.ndarray, variant_output: np.ndarray,
                    printed: list[PrintedCell]) -> dict[str, Any]:
    """The input or kernel as another slide prints it (``variant``), against the one the example ``used``.

    ``output`` is the example's output, ``variant_output`` the output with the variant.
    """
    what = "input" if "input" in variant else "kernel"
    base, shown = np.asarray(used, dtype=np.float64), np.asarray(variant[what], dtype=np.float64)
    differs: list[dict[str, Any]] = [
        {"at": [int(i) for i in idx], "slide_shows": number(shown[tuple(idx)]), "used": number(base[tuple(idx)])}
        for idx in np.argwhere(shown != base)]
    changes = [{"at": [int(i) for i in idx], "value": number(variant_output[tuple(idx)]), "correct": number(output[tuple(idx)])}
               for idx in np.argwhere(variant_output != output)]
    follows: list[dict[str, Any]] = [{"at": list(cell.index), "slide_shows": number(cell.value), "with_variant": number(variant_output[cell.index])}
               for cell in printed
               if same_as_printed(cell.value, output[cell.index]) and not same_as_printed(cell.value, variant_output[cell.index])]
    spots = "; ".join(f"{position(tuple(d['at']), WEIGHT_AXES)}: {d['slide_shows']} where this example has {d['used']}" for d in differs)
    why = f"{variant['where']}: the {what} printed there differs ({spots})"
    if changes:
        why += f"; with it the output would be [{_matrices(variant_output)}]"
    else:
        why += "; it changes no output cell"
    if follows:
        cells = ", ".join(f"{f['slide_shows']} at {position(tuple(f['at']), OUTPUT_AXES)}" for f in follows)
        other = ", ".join(str(f["with_variant"]) for f in follows)
        verb = "follows" if len(follows) == 1 else "follow"
        why += f"; the printed {cells} {verb} from the {what} used here, not from that one (which gives {other})"
    return {"where": variant["where"], "what": what, "differs": differs, "output": to_nested(variant_output),
            "changes": changes, "printed_follow_this_example": follows, "why": why}
