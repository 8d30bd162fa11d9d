"""Figure plumbing shared by the visualisations: matplotlib without a display, PNGs written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.fileio import atomic_write

DPI = 110


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: files only, so it works on servers, CI and in threads.

    Text is drawn as written: class names and file names are the user's (``a$b``, ``x_$^{``), and matplotlib's
    math-text parser would fail on them, so it is off; no figure of cnnkit uses math text.
    """
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path) -> Path:
    """Render ``fig`` to a PNG at ``path`` (all at once: a reader never sees half a file) and close it."""
    target = Path(path)
    if target.parent != Path() and not target.parent.is_dir():
        pyplot().close(fig)
        raise FileNotFoundError(f"--out: the folder {str(target.parent)!r} does not exist. Received: {str(target)!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    atomic_write(target, buffer.getvalue())
    return target


def show_image(ax: Any, picture: np.ndarray) -> None:
    """Draw a display image (grey with the grey colour map, RGB as is), without stretching its contrast."""
    if picture.ndim == 2:
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(picture)
