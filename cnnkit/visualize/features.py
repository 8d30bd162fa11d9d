"""Feature maps: what chosen layers of any ``nn.Module`` output for one real image.

Early convolutions answer with edge and colour maps at nearly the image's
resolution; later ones with fewer, coarser maps that respond to larger parts.
The default layers are one early, one middle and one late convolution, so the
figure shows that progression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.visualize.plot import pyplot, save_png, show_image
from cnnkit.visualize.probe import check_layers, default_layers, run


@dataclass(frozen=True)
class FeatureMaps:
    """The output of one layer for one image."""

    layer: str  # e.g. "features.3"
    kind: str  # e.g. "Conv2d"
    activation: torch.Tensor  # (C, H, W) float32 on the CPU

    def strongest(self, count: int) -> list[int]:
        """The ``count`` channels with the largest mean positive activation, strongest first.

        The positive part: what a following ReLU lets through, so that a convolution's
        raw output and an activation layer's output rank their channels alike.
        """
        means = self.activation.clamp_min(0).mean(dim=(1, 2))  # (C,)
        return means.argsort(descending=True)[:count].tolist()


def feature_maps(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None) -> list[FeatureMaps]:
    """The activations of ``layers`` (default: early, middle and late convolutions) for one input.

    ``x``: ``(1, C, H, W)``, prepared as the network expects. Works on any
    ``nn.Module``: forward hooks record the outputs, in eval mode, without
    gradients. A name that is not a layer with ``(C, H, W)`` outputs is a
    ``ValueError`` listing the valid ones.
    """
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"feature_maps takes one image as a batch of one, (1, C, H, W). Received: {tuple(x.shape)}")
    with torch.no_grad():
        hooked = run(model, x, keep=list(layers) if layers else "convs")
    names = list(layers) if layers else default_layers(hooked.calls)
    check_layers(names, hooked.calls)
    kinds = {call.name: call.kind for call in hooked.calls}
    return [FeatureMaps(name, kinds[name], hooked.kept[name][0].float().cpu()) for name in names]


@dataclass(frozen=True)
class FeatureFigure:
    """What :func:`draw_feature_maps` drew."""

    path: Path
    layers: list[dict[str, Any]]  # per row: layer, kind, shape (C, H, W), channels shown

    def as_dict(self) -> dict[str, Any]:
        return {"files": [str(self.path)], "layers": self.layers}


def draw_feature_maps(maps: Sequence[FeatureMaps], picture: np.ndarray, path: str | Path, *, per_layer: int = 8,
                      title: str = "Feature maps") -> FeatureFigure:
    """One row per layer: its ``per_layer`` most active channels for the image ``picture``.

    ``picture``: the input as shown, ``(H, W)`` grey or ``(H, W, 3)`` RGB in [0, 1].
    Each map is drawn from its own minimum to its maximum (written in its
    title with the channel number); rows are labelled with the layer's name,
    type and output shape.
    """
    if not maps:
        raise ValueError("draw_feature_maps needs at least one layer's maps")
    columns = max(min(per_layer, max(m.activation.shape[0] for m in maps)), 2)
    plt = pyplot()
    rows = len(maps) + 1
    fig, axes = plt.subplots(rows, columns, figsize=(1.45 * columns + 1.6, 1.55 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    show_image(axes[0, 0], picture)
    axes[0, 0].set_title("input", fontsize=8)
    for ax in axes[0, 1:]:
        ax.axis("off")
    axes[0, 1].text(0.0, 0.5, "Each row: the channels of one layer that respond most to this image (largest mean\n"
                    "positive activation), each map from its own minimum (dark) to maximum (bright), the range\n"
                    "above it. Early layers answer to edges and colours at full resolution; later ones to\n"
                    "larger parts, on coarser grids.",
                    fontsize=8, va="center", ha="left", transform=axes[0, 1].transAxes)
    described = []
    for row, maps_of_layer in enumerate(maps, start=1):
        activation = maps_of_layer.activation  # (C, H, W)
        chosen = maps_of_layer.strongest(columns)
        image = None
        for column, ax in enumerate(axes[row]):
            if column >= len(chosen):
                ax.axis("off")
                continue
            channel = chosen[column]
            tile = activation[channel]  # (H, W)
            low, high = float(tile.min()), float(tile.max())
            # each map on its own range: the pattern is what matters, and magnitudes differ by orders between channels
            image = ax.imshow(((tile - low) / (high - low if high > low else 1.0)).numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"ch {channel}: {low:.2g} to {high:.2g}", fontsize=6.5, pad=2)
        c, h, w = activation.shape
        axes[row, 0].set_ylabel(f"{maps_of_layer.layer}\n{maps_of_layer.kind}\n{c}x{h}x{w}", fontsize=8)
        if image is not None:
            bar = fig.colorbar(image, ax=axes[row].tolist(), fraction=0.02, pad=0.01, ticks=[0, 1])
            bar.ax.set_yticklabels(["min", "max"], fontsize=7)
            bar.set_label("activation", fontsize=8)
        described.append({"layer": maps_of_layer.layer, "kind": maps_of_layer.kind, "shape": [c, h, w],
                          "channels_shown": chosen})
    fig.suptitle(title, fontsize=10)
    return FeatureFigure(save_png(fig, path), described)
