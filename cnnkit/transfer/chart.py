"""The comparison as a figure: accuracy, trainable parameters and time of each strategy, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit.visualize.plot import pyplot, save_png

if TYPE_CHECKING:
    from cnnkit.transfer.comparison import CompareResult

_COLOURS = {"scratch": "#8c8c8c", "extract": "#4c72b0", "freeze": "#55a868", "finetune": "#c44e52"}


def comparison_chart(result: CompareResult, path: Path) -> None:
    """Three bar panels sharing the strategies: accuracy (with scratch's as a dashed line), parameters (log), seconds."""
    plt = pyplot()
    names = [row.strategy for row in result.rows]
    colours = [_COLOURS.get(name.split(":")[0], "#937860") for name in names]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    accuracy = [100 * (row.accuracy or 0.0) for row in result.rows]
    panels = ((axes[0], accuracy, f"{result.eval_split} accuracy (%)", "{:.1f}"),
              (axes[1], [row.trainable_params for row in result.rows], "trainable parameters (log)", "{:,.0f}"),
              (axes[2], [row.seconds for row in result.rows], "seconds", "{:.0f}"))
    for ax, values, label, fmt in panels:
        bars = ax.bar(names, values, color=colours)
        ax.set_ylabel(label)
        ax.tick_params(axis="x", rotation=20)
        for bar, value in zip(bars, values, strict=True):
            ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    axes[1].set_yscale("log")  # said in the label; bars on a log axis start at 1 parameter
    axes[0].set_ylim(0, 100)  # bars from zero: their lengths compare as the accuracies do
    axes[2].set_ylim(bottom=0)
    if "scratch" in names:
        axes[0].axhline(accuracy[names.index("scratch")], color="#8c8c8c", linestyle="--", linewidth=1)
    fig.suptitle(f"{result.base} -> {result.data}: {result.train_size:,} training images, "
                 f"{result.eval_size:,} {result.eval_split} images", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)
