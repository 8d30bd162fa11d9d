"""Evaluation figures: the confusion-matrix heat map and the grid of the most confident mistakes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from cnnkit.visualize.plot import pyplot, save_png


def confusion_figure(matrix: list[list[int]], class_names: list[str], path: Path, title: str) -> None:
    """Rows are the true classes, columns the predictions; colour is the row fraction, text the count."""
    plt = pyplot()
    counts = torch.tensor(matrix, dtype=torch.float64)
    fractions = counts / counts.sum(1, keepdim=True).clamp_min(1)
    size = max(5.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(fractions.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if len(class_names) <= 20:
        for i in ticks:
            for j in ticks:
                value = int(counts[i, j])
                if value:
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                            color="white" if fractions[i, j] > 0.5 else "black")
    save_png(fig, path)


def mistakes_figure(images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, class_names: list[str],
                    path: Path, count: int = 24, files: Sequence[str] = (), split: str = "") -> list[int]:
    """The ``count`` wrong predictions made with the highest confidence, each titled with where to find the image
    (its file name, else ``#index`` in the split), true -> predicted (p), so that a mislabelled image can be found.

    ``images``: ``(N, C, H, W)`` uint8; ``files``: one path per image, when the split came from files.
    Returns the indices drawn, most confident first (empty: no figure written).
    """
    probabilities = logits.float().softmax(1)
    confidence, predicted = probabilities.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    if len(wrong) == 0:
        return []
    chosen = wrong[confidence[wrong].argsort(descending=True)][:count]
    plt = pyplot()
    columns = min(8, len(chosen))
    rows = (len(chosen) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, chosen.tolist(), strict=False):
        picture = images[index].permute(1, 2, 0).numpy()
        ax.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=255)
        where = Path(files[index]).name if index < len(files) else f"#{index}"
        ax.set_title(f"{where[:22]}\n{class_names[int(labels[index])]}\n-> {class_names[int(predicted[index])]} "
                     f"({confidence[index]:.0%})", fontsize=7)
    what = "file" if files else f"index in the {split} split" if split else "index"
    fig.suptitle(f"Most confident mistakes ({what}; true -> predicted, confidence)", fontsize=9)
    save_png(fig, path)
    return chosen.tolist()
