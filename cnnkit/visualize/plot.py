"""Figure plumbing shared by the visualisations: matplotlib without a display, PNGs written atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.training.rundir import atomic_write

DPI = 110


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: files only, so it works on servers, CI and in threads."""
    import matplotlib

    matplotlib.use("Agg")
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


def display_image(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """A normalised ``(C, H, W)`` input back as pixels to show: ``(H, W)`` grey or ``(H, W, 3)`` RGB in [0, 1]."""
    channels = x.shape[0]
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1) if mean else torch.zeros(channels, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1) if std else torch.ones(channels, 1, 1)
    pixels = (x.detach().cpu() * s + m).clamp(0, 1)
    if channels == 1:
        return pixels[0].numpy()
    return pixels[:3].permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)


def show_image(ax: Any, picture: np.ndarray) -> None:
    """Draw a display image (grey with the grey colour map, RGB as is), without stretching its contrast."""
    if picture.ndim == 2:
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(picture)
