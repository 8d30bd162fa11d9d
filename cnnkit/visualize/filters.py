"""The learnt filters of a convolution layer, drawn as small pictures.

A first layer's filters look at pixels, so they can be shown as pixels: with
three input channels each filter is a small colour patch (what colour and
edge it responds to), with one it is a grey patch. A deeper filter has one
``kh x kw`` slice per input channel; it is drawn as a grid of those slices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.visualize.plot import pyplot, save_png
from cnnkit.visualize.probe import conv_modules, unknown_layer


@dataclass(frozen=True)
class FilterFigure:
    """What :func:`draw_filters` drew."""

    path: Path
    layer: str  # e.g. "features.0"
    kind: str  # e.g. "Conv2d"
    shape: tuple[int, int, int, int]  # the weight: (C_out, C_in / groups, kh, kw)
    shown: int  # how many filters are in the figure (the first ones)

    def as_dict(self) -> dict[str, Any]:
        return {"files": [str(self.path)], "layer": self.layer, "kind": self.kind, "shape": list(self.shape),
                "filters_shown": self.shown}


def conv_weight(model: nn.Module, layer: str | None = None) -> tuple[str, nn.Module, torch.Tensor]:
    """``(name, module, weight)`` of the layer ``layer``, or of the first convolution when ``None``.

    ``weight`` is ``(C_out, C_in / groups, kh, kw)`` float on the CPU.
    """
    convs = conv_modules(model)
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution layer (no module with a 4-D weight)")
    if layer is None:
        name, module = convs[0]
    else:
        found = dict(convs).get(layer)
        if found is None:
            raise unknown_layer(layer, [n for n, _ in convs], "convolution layer")
        name, module = layer, found
    weight = getattr(module, "weight")  # noqa: B009  (conv_modules checked it is a 4-D tensor)
    return name, module, weight.detach().float().cpu()


def _mosaic(kernels: torch.Tensor, columns: int) -> np.ndarray:
    """``(K, kh, kw)`` slices laid out ``columns`` wide with one-pixel gaps (NaN: drawn as background)."""
    count, kh, kw = kernels.shape
    rows = math.ceil(count / columns)
    tile = np.full((rows * (kh + 1) - 1, columns * (kw + 1) - 1), np.nan)
    for i in range(count):
        r, c = divmod(i, columns)
        tile[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = kernels[i].numpy()
    return tile


def draw_filters(model: nn.Module, path: str | Path, layer: str | None = None, *, max_filters: int = 64,
                 max_channels: int = 16, title: str | None = None) -> FilterFigure:
    """Draw the filters of ``layer`` (default: the first convolution) into the PNG ``path``.

    - 3 input channels: each filter as an RGB patch, scaled on its own so that
      mid-grey is 0 (``0.5 + w / (2 max|w|)``): the colour it responds to.
    - 1 input channel: grey patches on one shared scale, with a colour bar.
    - more: each filter as a grid of its first ``max_channels`` input-channel
      slices, blue (negative) to red (positive) on one shared scale.

    The first ``max_filters`` filters are drawn; the title (``title`` replaces its
    first line) names the layer and the weight's shape.
    """
    name, module, weight = conv_weight(model, layer)
    c_out, c_in, kh, kw = weight.shape
    shown = min(c_out, max_filters)
    columns = min(8, shown) if c_in > 3 else min(12, shown)
    rows = math.ceil(shown / columns)
    colour = c_in == 3
    slices = min(c_in, max_channels)
    grid_side = math.ceil(math.sqrt(slices)) if c_in not in (1, 3) else 1
    # a filter's tile: grid_side slices across, as many rows as needed, one-pixel gaps between them
    tile_h = math.ceil(slices / grid_side) * (kh + 1) - 1 if grid_side > 1 else kh
    tile_w = grid_side * (kw + 1) - 1 if grid_side > 1 else kw
    cell = 1.2 if c_in in (1, 3) else 1.5
    plt = pyplot()
    fig, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                             figsize=(cell * columns + 1.2, cell * rows * tile_h / tile_w + 1.0))
    # the gaps between slices: dark, unlike a zero weight (white)
    diverging = plt.get_cmap("RdBu_r").with_extremes(bad="#505050")
    limit = float(weight[:shown].abs().max()) or 1.0
    image = None
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= shown:
            ax.axis("off")
            continue
        w = weight[index]  # (C_in, kh, kw)
        if colour:
            patch = 0.5 + w.permute(1, 2, 0) / (2 * (float(w.abs().max()) or 1.0))  # (kh, kw, 3) in [0, 1]
            ax.imshow(patch.numpy(), interpolation="nearest")
        elif c_in == 1:
            image = ax.imshow(w[0].numpy(), cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
        else:
            image = ax.imshow(_mosaic(w[:max_channels], grid_side), cmap=diverging, vmin=-limit, vmax=limit,
                              interpolation="nearest")
        ax.set_title(f"#{index}", fontsize=7, pad=2)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.01, label="weight")
    what = (f"{c_out} filters of {c_in}x{kh}x{kw}" + (f", first {shown} shown" if shown < c_out else ""))
    how = ("RGB, each scaled to its own range, grey = 0" if colour else
           "grey level = weight" if c_in == 1 else
           f"each: its {'first ' if c_in > max_channels else ''}{min(c_in, max_channels)} input-channel slices")
    heading = title or f"Filters of {name} ({type(module).__name__}): {what}"
    fig.suptitle(f"{heading}\n({how})", fontsize=9)
    written = save_png(fig, path)
    return FilterFigure(written, name, type(module).__name__, (c_out, c_in, kh, kw), shown)
