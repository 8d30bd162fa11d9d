"""Translation equivariance and invariance of a small CNN, measured on Fashion-MNIST.

Shift an image ``s`` pixels to the right and compare what a trained network computes:

- a convolution is *equivariant*: the maps of the shifted image are the shifted maps, ``f(T_s x) = T_s f(x)``
  (away from the border). Measured as the relative error ``||f(T_s x) - T_s f(x)|| / ||f(x)||`` over the maps'
  interior, with ``T_s`` a circular shift along the width.
- after 2x2 max pooling the maps live on a grid twice as coarse: an even shift moves them by ``s/2`` cells and
  the error stays ~0; an odd shift moves the grid under the pooling windows, and no shift of the maps matches.
- the prediction is *invariant* when the class stays the same: measured as how often the predicted class of the
  shifted image (zeros filled in on the left) equals the class predicted for the original, for ``s = 0..k``, with two
  heads on the same convolutions: flatten + dense (a weight per position) and global average pooling + dense.

Needs Fashion-MNIST (``scripts/setup.sh`` installs it as root; else see ``cnnkit.data``)::

    python examples/translation_equivariance.py [--max-shift 4] [--train-images 12000] [--epochs 2] [--out FIGURE]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.cli import figure_file, whole_number
from cnnkit.data import load
from cnnkit.explain.panels import pyplot, save_figure

Stage = Callable[[torch.Tensor], torch.Tensor]
Net = TypeVar("Net", bound=nn.Module)


@dataclass(frozen=True)
class Config:
    train_images: int = 12000  # the first N training images (all ten classes)
    eval_images: int = 2000  # test images the shifts are measured on
    epochs: int = 2
    batch_size: int = 64
    lr: float = 2e-3
    max_shift: int = 4  # shifts 0..max_shift pixels
    seed: int = 0


# ----------------------------------------------------------------------------- the measurements


def shift(images: torch.Tensor, pixels: int, circular: bool = True) -> torch.Tensor:
    """Move ``(N, C, H, W)`` images ``pixels`` to the right: circularly, or with zeros coming in on the left."""
    if circular or pixels == 0:
        return torch.roll(images, pixels, dims=-1)
    moved = torch.zeros_like(images)
    moved[..., pixels:] = images[..., :-pixels]
    return moved


def equivariance_error(stage: Stage, images: torch.Tensor, pixels: int, scale: int = 1, margin: int = 0) -> float:
    """``||stage(T_s x) - T_{s/scale} stage(x)|| / ||stage(x)||`` for a circular shift of ``pixels`` along the width.

    ``scale`` is how many input pixels one map cell spans (2 after one 2x2 pooling); ``margin`` map columns are
    left out on each side, where the border (padding, the wrapped-around columns) breaks equivariance. When
    ``pixels`` is not a multiple of ``scale`` the maps cannot move by a whole number of cells: the smaller error
    of the two nearest whole shifts is returned.
    """
    with torch.no_grad():
        before, after = stage(images), stage(shift(images, pixels))  # (N, C, h, w)
    width = before.shape[-1]
    if 2 * margin >= width:
        raise ValueError(f"`margin` ({margin}) leaves no column of the {width}-wide maps. Received: margin={margin}")
    errors = []
    for cells in {pixels // scale, -(-pixels // scale)}:
        expected = torch.roll(before, cells, dims=-1)[..., margin:width - margin]
        errors.append(float((after[..., margin:width - margin] - expected).norm() / expected.norm()))
    return min(errors)


def agreement(model: nn.Module, images: torch.Tensor, pixels: int) -> float:
    """The fraction of ``images`` whose predicted class stays the same when shifted ``pixels`` (zeros filled in)."""
    with torch.no_grad():
        return float((model(shift(images, pixels, circular=False)).argmax(1) == model(images).argmax(1)).float().mean())


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, pixels: int = 0) -> float:
    with torch.no_grad():
        return float((model(shift(images, pixels, circular=False)).argmax(1) == labels).float().mean())


# ----------------------------------------------------------------------------- the network


class SmallCNN(nn.Module):
    """conv 5x5 -> ReLU -> 2x2 max pool -> conv 3x3 -> ReLU -> 2x2 max pool -> head: ``(N, 1, 28, 28) -> (N, 10)``.

    ``head="flatten"``: flatten the ``24 x 7 x 7`` maps and a dense layer; ``head="gap"``: average each map over
    its positions first (global average pooling), then a dense layer on the 24 averages.
    """

    def __init__(self, head: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 12, 5, padding=2)  # (N, 12, 28, 28)
        self.conv2 = nn.Conv2d(12, 24, 3, padding=1)  # (N, 24, 14, 14)
        self.head = head
        self.fc = nn.Linear(24 * 7 * 7 if head == "flatten" else 24, 10)

    def conv1_maps(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv1(x))  # (N, 12, 28, 28): before pooling

    def pool1_maps(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.conv1_maps(x), 2)  # (N, 12, 14, 14)

    def conv2_maps(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.pool1_maps(x)))  # (N, 24, 14, 14): before the second pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = F.max_pool2d(self.conv2_maps(x), 2)  # (N, 24, 7, 7)
        features = torch.flatten(maps, 1) if self.head == "flatten" else maps.mean(dim=(2, 3))  # (N, 1176) or (N, 24)
        return self.fc(features)


def train(model: Net, images: torch.Tensor, labels: torch.Tensor, config: Config) -> Net:
    """A few epochs of Adam on cross-entropy; the batches shuffled with the config's seed."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), config.batch_size):
            batch = order[start:start + config.batch_size]
            # 1. forward, 2. loss, 3. backward, 4. step
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


# ----------------------------------------------------------------------------- the figure


def _interior(difference: torch.Tensor, margin: int) -> np.ndarray:
    """The difference with ``margin`` columns on each side blanked (NaN: drawn grey), as the measurement leaves them out."""
    shown = difference.numpy().copy()
    shown[:, :margin], shown[:, shown.shape[1] - margin:] = np.nan, np.nan
    return shown


def draw(model: SmallCNN, image: torch.Tensor, shifts: list[int], errors: dict[str, list[float]],
         agreements: dict[str, list[float]], path: Path) -> Path:
    """Top: an image and its 3-pixel shift, one conv1 map of each, their difference once the shift is undone
    (equivariant: 0 inside the border) and the same after pooling (3 pixels are 1.5 cells: no match). Bottom: the
    measured curves."""
    plt = pyplot()
    fig = plt.figure(figsize=(13, 6.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.15])
    axes = top.subplots(1, 6)
    x, moved = image[None], shift(image[None], 3)
    with torch.no_grad():
        maps = [model.conv1_maps(x)[0, 0], model.conv1_maps(moved)[0, 0]]
        pooled = [model.pool1_maps(x)[0, 0], model.pool1_maps(moved)[0, 0]]
    limit = float(maps[0].abs().max())
    panels = [(x[0, 0].numpy(), "image", None), (moved[0, 0].numpy(), "shifted 3 px", None),
              (maps[0].numpy(), "conv1 map", None), (maps[1].numpy(), "conv1 map, shifted", None),
              (_interior(maps[1] - torch.roll(maps[0], 3, -1), 5), "conv1: shifted map - map\nshifted 3 (0 inside)", limit),
              (_interior(pooled[1] - torch.roll(pooled[0], 1, -1), 3), "after 2x2 pooling: 3 px =\n1.5 cells, no match", limit)]
    diverging = plt.get_cmap("RdBu_r").with_extremes(bad="#d0d0d0")
    for ax, (picture, title, scale) in zip(axes, panels, strict=True):
        if scale is None:
            ax.imshow(picture, cmap="gray")
        else:
            ax.imshow(picture, cmap=diverging, vmin=-scale, vmax=scale)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    left, right = bottom.subplots(1, 2)
    for name, values in errors.items():
        left.plot(shifts, values, marker="o", label=name)
    left.set(xlabel="shift (pixels)", ylabel="relative error", xticks=shifts,
             title="equivariance: ||f(shifted x) - shifted f(x)|| / ||f(x)||")
    left.legend(fontsize=8)
    for name, values in agreements.items():
        right.plot(shifts, [100 * v for v in values], marker="o", label=name)
    right.set(xlabel="shift (pixels)", ylabel="% of test images", ylim=(0, 102), xticks=shifts,
              title="invariance: predicted class unchanged")
    right.legend(fontsize=8)
    return save_figure(fig, path, "out")


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-shift", type=whole_number(1), default=Config.max_shift, help="at most 5 (default 4)")
    parser.add_argument("--train-images", type=whole_number(1), default=Config.train_images)
    parser.add_argument("--epochs", type=whole_number(1), default=Config.epochs)
    parser.add_argument("--seed", type=whole_number(0), default=Config.seed)
    parser.add_argument("--out", type=figure_file("out"), default="demo-equivariance.png", help="the figure, PNG or SVG")
    args = parser.parse_args()
    if args.max_shift > 5:
        parser.error(f"--max-shift must be at most 5: the second convolution's maps (14 wide) keep an interior to measure "
                     f"up to there. Received: --max-shift={args.max_shift}")
    config = Config(max_shift=args.max_shift, train_images=args.train_images, epochs=args.epochs, seed=args.seed)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    # one thread: these batches are small, and two OpenMP threads spin against any other busy process (measured
    # 17x slower on a loaded 2-core machine); see examples/lenet_numpy_digits.py
    torch.set_num_threads(1)

    splits = load("fashion-mnist")
    assert splits.test is not None  # Fashion-MNIST has its official test split
    x_train = splits.train.images[:config.train_images].float() / 255  # (N, 1, 28, 28) in [0, 1]
    y_train = splits.train.labels[:config.train_images]
    x_eval = splits.test.images[:config.eval_images].float() / 255
    y_eval = splits.test.labels[:config.eval_images]
    print(f"Fashion-MNIST: {len(x_train)} training images, {len(x_eval)} test images; {config}")

    models = {head: train(SmallCNN(head), x_train, y_train, config) for head in ("flatten", "gap")}
    for head, model in models.items():
        print(f"head {head:7s}: test accuracy {accuracy(model, x_eval, y_eval):.1%}")

    shifts = list(range(config.max_shift + 1))
    net = models["flatten"]
    # (name, stage, input pixels per map cell, the stage's reach in input pixels beyond a window's centre)
    stages: list[tuple[str, Stage, int, int]] = [("conv1, before pooling", net.conv1_maps, 1, 2),
                                                 ("after 2x2 max pooling", net.pool1_maps, 2, 3),
                                                 ("conv2, before pooling", net.conv2_maps, 2, 7)]
    errors: dict[str, list[float]] = {}
    print("\nequivariance error ||f(shifted x) - shifted f(x)|| / ||f(x)||, circular shift, maps' interior:")
    print("shift (px)              " + "".join(f"{s:>9d}" for s in shifts))
    for name, stage, scale, reach in stages:
        errors[name] = [equivariance_error(stage, x_eval[:500], s, scale, math.ceil((s + reach) / scale)) for s in shifts]
        print(f"{name:24s}" + "".join(f"{e:9.2g}" for e in errors[name]))

    agreements = {f"head {head} ({accuracy(model, x_eval, y_eval):.0%} accurate)": [agreement(model, x_eval, s) for s in shifts]
                  for head, model in models.items()}
    print("\ninvariance: predicted class unchanged after the shift (zeros filled in), and test accuracy:")
    print("shift (px)              " + "".join(f"{s:>9d}" for s in shifts))
    for head, model in models.items():
        unchanged = [agreement(model, x_eval, s) for s in shifts]
        print(f"{'head ' + head + ', unchanged':24s}" + "".join(f"{a:9.1%}" for a in unchanged))
        print(f"{'head ' + head + ', accuracy':24s}" + "".join(f"{accuracy(model, x_eval, y_eval, s):9.1%}" for s in shifts))

    # an image clear of the left and right border, so that the circular shift only moves it
    clear = int(torch.nonzero(x_eval[:, 0, :, :5].amax(dim=(1, 2)) + x_eval[:, 0, :, -5:].amax(dim=(1, 2)) == 0)[0])
    written = draw(net, x_eval[clear], shifts, errors, agreements, Path(args.out))
    print(f"\nwrote {written}; {time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
