"""``--figure FILE`` and ``--cell ROW,COL`` of ``cnnkit explain conv|pool|deconv|backprop``: draw the explanation.

A thin layer over :func:`cnnkit.explain.figures.draw`: the flags are checked before
any work (a wrong suffix, a missing folder, a malformed cell), the cell against the
explanation once it exists, each error naming the flag and the value received.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

CELL_HELP = {
    "conv": "the output cell whose window the figure highlights, ROW,COL from 0 (default 0,0); with several filters "
            "FILTER,ROW,COL",
    "pool": "the output cell whose window (and winner) the figure highlights, ROW,COL from 0 (default 0,0)",
    "deconv": "the input cell whose scattered copy of the kernel the figure highlights, ROW,COL from 0 (default 0,0)",
    "backprop": "the cell highlighted in every row of the figure (conv: in Y, dL/dK and dL/dX; pool: in dL/dY), ROW,COL "
                "from 0 (default 0,0)",
}


def add_figure_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--figure`` and ``--cell`` to the sub-command ``what``."""
    parser.add_argument("--figure", default=None, metavar="FILE",
                        help="also draw the explanation into FILE, PNG or SVG by its suffix: input | kernel | output "
                        "panels, one window highlighted and its sum written out, the padded border shaded")
    parser.add_argument("--cell", default=None, metavar="ROW,COL", help=CELL_HELP[what])


def parse_cell(text: str | None) -> tuple[int, ...] | None:
    """``"1,2"`` -> ``(1, 2)`` (``"0,1,2"`` for a filter, a row and a column); ``None`` stays ``None``."""
    if text is None:
        return None
    if not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*){1,2}", text):
        raise ValueError(f"`--cell` must be ROW,COL (or FILTER,ROW,COL), whole numbers from 0. Received: --cell={text!r}")
    return tuple(int(v) for v in text.split(","))


def check_flags(args: argparse.Namespace) -> None:
    """Fail before the work: a bad suffix or folder for ``--figure``, a malformed ``--cell``, ``--cell`` alone."""
    from cnnkit.explain.panels import check_figure_path

    figure, cell = getattr(args, "figure", None), getattr(args, "cell", None)
    if cell is not None and figure is None:
        raise ValueError(f"`--cell` chooses the window a figure highlights: give --figure FILE too. Received: --cell={cell!r}")
    parse_cell(cell)
    if figure is not None:
        check_figure_path(figure)


def write_figure(args: argparse.Namespace, result: Any) -> str | None:
    """Draw ``result`` into ``--figure`` with ``--cell`` highlighted; the path written, or ``None`` without ``--figure``."""
    figure = getattr(args, "figure", None)
    if figure is None:
        return None
    from cnnkit.explain import figures

    cell = figures.check_cell(result, parse_cell(args.cell), name="--cell")
    return str(figures.draw(result, figure, cell))
