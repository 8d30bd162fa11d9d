"""Figures of image outputs: segmentation overlays (image / true mask / predicted mask) and image grids
(noisy / denoised / clean, original / reconstruction). Written atomically, like every run file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnkit.visualize.plot import pyplot, save_png


def class_colours(count: int) -> np.ndarray:
    """``(count, 4)`` RGBA colours, one per class; class 0 (the background) is transparent."""
    plt = pyplot()
    palette = plt.get_cmap("tab10" if count <= 11 else "tab20")
    colours = np.array([palette((i - 1) % palette.N) for i in range(count)], dtype=np.float64)
    colours[0] = (0.0, 0.0, 0.0, 0.0)
    return colours


def _picture(image: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` uint8 or [0, 1] float -> what ``imshow`` draws: ``(H, W)`` grey or ``(H, W, 3)``, on [0, 1]."""
    pixels = image.float() / 255.0 if image.dtype == torch.uint8 else image.float().clamp(0, 1)
    array = pixels.permute(1, 2, 0).cpu().numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def _show(ax: object, image: torch.Tensor) -> None:
    ax.imshow(_picture(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # type: ignore[attr-defined]


def segmentation_figure(images: torch.Tensor, truth: torch.Tensor, predicted: torch.Tensor, indices: list[int],
                        class_names: list[str], path: Path, title: str) -> None:
    """One column per image in ``indices``; rows: the image, the true mask over it, the predicted mask over it.

    ``images``: ``(N, C, H, W)`` uint8; ``truth``, ``predicted``: ``(N, H, W)`` class ids. Each column's caption
    gives its pixel accuracy; the legend names the class colours (the background is left uncoloured).
    """
    plt = pyplot()
    colours = class_colours(len(class_names))
    fig, axes = plt.subplots(3, len(indices), figsize=(1.3 * len(indices) + 0.8, 5.0), squeeze=False)
    for column, index in enumerate(indices):
        right = float((truth[index] == predicted[index]).float().mean())
        for row, mask in enumerate((None, truth[index], predicted[index])):
            ax = axes[row, column]
            _show(ax, images[index])
            if mask is not None:
                overlay = colours[mask.long().cpu().numpy()].copy()  # (H, W, 4)
                overlay[..., 3] *= 0.65  # see the image through the mask
                ax.imshow(overlay, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[2, column].set_xlabel(f"{right:.1%} right", fontsize=6)
    for row, label in enumerate(("image", "true mask", "predicted")):
        axes[row, 0].set_ylabel(label, fontsize=8)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=colours[i], label=name) for i, name in enumerate(class_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_png(fig, path)


def image_grid_figure(rows: list[tuple[str, torch.Tensor]], path: Path, title: str,
                      captions: dict[str, list[str]] | None = None) -> None:
    """A grid with one row per ``(label, images)`` (``(N, C, H, W)``, [0, 1] float or uint8), images in columns.

    ``captions`` maps a row's label to one caption per image (e.g. its PSNR).
    """
    plt = pyplot()
    columns = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.25 * columns + 0.8, 1.45 * len(rows) + 0.5), squeeze=False)
    for ax_row, (label, images) in zip(axes, rows, strict=True):
        for column, ax in enumerate(ax_row):
            _show(ax, images[column])
            ax.set_xticks([])
            ax.set_yticks([])
            if captions and label in captions:
                ax.set_xlabel(captions[label][column], fontsize=6)
        ax_row[0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, path)
