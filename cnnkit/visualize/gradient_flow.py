"""The figure of ``cnnkit explain gradients --figure``: gradient norm per layer, one curve per network and time."""

from __future__ import annotations

from pathlib import Path

from cnnkit.training.gradient_flow import GradientFlow
from cnnkit.visualize.plot import pyplot, save_png

COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b")


def draw_gradient_flow(result: GradientFlow, path: str | Path) -> Path:
    """``||dL/dW||`` of every weighted layer from input to output on a log scale: solid at initialisation, dashed
    after the training steps, one colour per network; a PNG at ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for index, net in enumerate(result.networks):
        colour = COLOURS[index % len(COLOURS)]
        positions = range(1, len(net.layers) + 1)
        ax.plot(positions, [layer.init for layer in net.layers], color=colour, marker="o", markersize=3,
                linewidth=1.6, label=f"{net.name}, initial weights")
        ax.plot(positions, [layer.trained for layer in net.layers], color=colour, marker="o", markersize=3,
                linewidth=1.2, linestyle="--", label=f"{net.name}, after {result.config.steps} steps")
    ax.set_yscale("log")
    # plain labels ("1e-08"): math text is off in cnnkit's figures, and log axes label with it by default
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("weighted layer, from the input (1) to the output")
    ax.set_ylabel("gradient norm ||dL/dW|| (log scale)")
    longest = max(result.networks, key=lambda net: len(net.layers))
    ticks = range(1, len(longest.layers) + 1)
    ax.set_xticks(list(ticks))
    ax.set_xticklabels([layer.name for layer in longest.layers], rotation=90, fontsize=7)
    if len(result.networks) > 1:
        factor = result.factor(1)
        ax.set_title(f"First layer: {result.networks[1].name} gets {factor:.3g} x the gradient of "
                     f"{result.networks[0].name} at initialisation", fontsize=10)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_png(fig, path)
