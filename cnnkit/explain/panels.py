"""Drawing a small matrix as a grid of numbered cells, for the explanations' figures.

A panel is one matplotlib axes showing a matrix the way the slides draw it: one
square per cell with its value written in, the padded border in a grey shade,
and on top of it the marks of one step: the window (a thick outline), the taps a
dilated kernel reads, a pooling window's winner (a ring). Cell ``(r, c)`` is
centred at ``x = c, y = r`` (``imshow``'s convention), so a window over rows
``r0..r1`` and columns ``c0..c1`` is the rectangle from ``(c0 - 0.5, r0 - 0.5)``,
``c1 - c0 + 1`` wide and ``r1 - r0 + 1`` high.

Every mark carries a label (``"window"``, ``"tap"``, ``"winner"``, ``"cell"``) and
the worked sum a gid (``"sum"``), so that tests and users can find what a figure
shows. Figures are written as PNG or SVG by the file's suffix (SVG keeps its
text as text), atomically.
"""

from __future__ import annotations

import io
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.explain.matrices import number
from cnnkit.fileio import atomic_write

FORMATS = (".png", ".svg")
DPI = 120
WINDOW_COLOUR = "#d62728"  # the chosen window, its kernel and its output cell
WINNER_COLOUR = "#1f77b4"  # a pooling window's winner
PAD_SHADE = "#c8c8c8"  # padded cells (zeros, -inf, +inf, or cut off by a transposed convolution)
CELL_SHADE = "#ffffff"
MAX_WRITTEN = 12  # above this many rows or columns the values are drawn as grey levels, not written
WRAP = 110  # characters per line of a worked sum
MAX_DENOMINATOR = 64  # 1/9, 1/16, 1/25 ... are written as fractions


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, math text off (a user's ``$`` is a dollar), SVG text kept as text."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    return plt


def check_figure_path(path: str | Path, flag: str = "figure") -> str:
    """``"png"`` or ``"svg"`` from the file's suffix, once the folder is known to exist: another suffix is a
    ``ValueError``, a missing folder a ``FileNotFoundError``, both naming ``--flag`` and the path."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"`--{flag}` must end in .png or .svg (the format follows the suffix). Received: --{flag}={str(path)!r}")
    if target.parent != Path() and not target.parent.is_dir():
        raise FileNotFoundError(f"`--{flag}`: the folder {str(target.parent)!r} does not exist. Received: --{flag}={str(path)!r}")
    return suffix[1:]


def save_figure(fig: Any, path: str | Path, flag: str = "figure") -> Path:
    """Render ``fig`` as PNG or SVG (by the suffix) into ``path`` at once, atomically, and close it."""
    plt = pyplot()
    target = Path(path)
    try:
        kind = check_figure_path(target, flag)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=kind, dpi=DPI, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    atomic_write(target, buffer.getvalue())
    return target


def cell_text(value: float) -> str:
    """``3``, ``0.25``, ``1/9``, ``-inf``: a cell's value as the explanations write it; a fraction with a small
    denominator (a blur's ``1/9``) as the fraction, when its decimals would not fit in the cell."""
    if np.isinf(value):
        return "-inf" if value < 0 else "+inf"
    text = f"{number(value):.4g}"
    fraction = Fraction(value).limit_denominator(MAX_DENOMINATOR)
    if len(text) > 5 and fraction.denominator > 1 and float(fraction) == value:
        return f"{fraction.numerator}/{fraction.denominator}"
    return text


def draw_matrix(ax: Any, values: np.ndarray, title: str, shade: np.ndarray | None = None) -> None:
    """Draw ``values`` ``(H, W)`` as numbered cells; ``shade`` (bool ``(H, W)``) marks padded cells grey.

    A matrix over :data:`MAX_WRITTEN` cells a side is drawn as grey levels (its values would not fit).
    """
    from matplotlib.colors import ListedColormap

    h, w = values.shape
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(w))
    ax.set_yticks(range(h))
    ax.tick_params(labelsize=7, length=0)
    ax.xaxis.tick_top()
    if max(h, w) > MAX_WRITTEN:
        finite = np.where(np.isfinite(values), values, np.nan)
        ax.imshow(finite, cmap="gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if shade is not None and shade.any():
            overlay = np.ma.masked_where(~shade, np.ones_like(values))
            ax.imshow(overlay, cmap=ListedColormap([PAD_SHADE]), alpha=0.8, interpolation="nearest")
        return
    mask = np.zeros((h, w), dtype=bool) if shade is None else shade
    ax.imshow(mask.astype(float), cmap=ListedColormap([CELL_SHADE, PAD_SHADE]), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="#888888", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    size = 9 if max(h, w) <= 6 else 7
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, cell_text(float(value)), ha="center", va="center", fontsize=size,
                color="#555555" if mask[r, c] else "black")


def outline(ax: Any, rows: tuple[int, int], cols: tuple[int, int], label: str = "window",
            colour: str = WINDOW_COLOUR, width: float = 2.5) -> Any:
    """A rectangle around rows ``rows[0]..rows[1]`` and columns ``cols[0]..cols[1]`` (inclusive), labelled ``label``."""
    from matplotlib.patches import Rectangle

    patch = Rectangle((cols[0] - 0.5, rows[0] - 0.5), cols[1] - cols[0] + 1, rows[1] - rows[0] + 1, fill=False,
                      edgecolor=colour, linewidth=width, label=label, zorder=3)
    ax.add_patch(patch)
    return patch


def ring(ax: Any, row: int, col: int, label: str = "winner", colour: str = WINNER_COLOUR) -> Any:
    """A ring around cell ``(row, col)``, labelled ``label``: a pooling window's winner."""
    from matplotlib.patches import Circle

    patch = Circle((col, row), 0.42, fill=False, edgecolor=colour, linewidth=2.0, label=label, zorder=4)
    ax.add_patch(patch)
    return patch


def dot(ax: Any, row: int, col: int, label: str = "tap", colour: str = WINDOW_COLOUR) -> Any:
    """A small square in the corner of cell ``(row, col)``, labelled ``label``: a cell a dilated kernel reads."""
    from matplotlib.patches import Rectangle

    patch = Rectangle((col + 0.22, row - 0.45), 0.22, 0.22, color=colour, label=label, zorder=4)
    ax.add_patch(patch)
    return patch


def patches(ax: Any, label: str) -> list[Any]:
    """The marks of ``ax`` labelled ``label``, in the order they were drawn."""
    return [p for p in ax.patches if p.get_label() == label]


def window_of(patch: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((r0, r1), (c0, c1))``, inclusive: the cells an :func:`outline` rectangle covers."""
    x, y = patch.get_xy()
    c0, r0 = round(x + 0.5), round(y + 0.5)
    return (r0, r0 + round(patch.get_height()) - 1), (c0, c0 + round(patch.get_width()) - 1)


def add_sum(fig: Any, text: str, y: float = 0.0) -> Any:
    """Write the worked sum under the panels (wrapped), as the text with gid ``"sum"``."""
    wrapped = "\n".join(textwrap.fill(line, WRAP, subsequent_indent="    ", break_long_words=False,
                                                   break_on_hyphens=False) for line in text.splitlines())
    artist = fig.text(0.5, y, wrapped, ha="center", va="top", fontsize=9, family="monospace")
    artist.set_gid("sum")
    return artist


def sum_text(fig: Any) -> str:
    """The worked sum :func:`add_sum` wrote, unwrapped (for tests and checks)."""
    texts = [t.get_text() for t in fig.texts if t.get_gid() == "sum"]
    return " ".join(" ".join(t.split()) for t in texts)


def padding_mask(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> np.ndarray:
    """``True`` outside the ``height x width`` block at ``(top, left)``: the padded border of a ``shape`` matrix."""
    mask = np.ones(shape, dtype=bool)
    mask[top:top + height, left:left + width] = False
    return mask


def panel_widths(*matrices: np.ndarray) -> list[float]:
    """Width ratios for panels side by side: each matrix's columns (at least 2, so a 1x1 kernel stays visible)."""
    return [float(max(m.shape[1], 2)) if min(m.shape[0], m.shape[1]) > 0 else 2.0 for m in matrices]
