"""Figures of boxes: images with their true boxes (dashed) and the network's (solid, with class and score)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.evaluation.dense_figures import class_colours

OVERLAY_MIN_SIDE = 256


@dataclass(frozen=True)
class Drawn:
    """The boxes of one image to draw: ``(M, 4)`` pixels, their classes ``(M,)`` and scores (None: true boxes),
    and their instance masks ``(M, H, W)`` bool (None: none)."""

    boxes: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor | None = None
    masks: torch.Tensor | None = None


def _picture(image: torch.Tensor) -> np.ndarray:
    """``(C, H, W) uint8`` -> ``(H, W, 3)`` floats for imshow."""
    array = image.permute(1, 2, 0).cpu().numpy().astype(np.float32) / 255.0
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def boxes_figure(images: torch.Tensor, truth: Sequence[Drawn], predicted: Sequence[Drawn], class_names: Sequence[str],
                 path: Path, title: str, captions: Sequence[str] = ()) -> Path:
    """A row of images (``(N, C, H, W) uint8``), each with its true boxes dashed and the predicted ones solid,
    labelled ``class score``; colours by class. Written to ``path`` (PNG)."""
    from cnnkit.visualize.plot import pyplot, save_png

    plt = pyplot()
    n = len(images)
    columns = min(n, 4)
    rows = (n + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.2 * rows), squeeze=False)
    colours = class_colours(len(class_names) + 1)[1:, :3]  # skip the background's colour
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        picture = _picture(images[k])
        shown = predicted[k]
        if shown.masks is not None:  # the network's masks tinted in their classes' colours
            for mask, c in zip(shown.masks.cpu().numpy(), shown.classes.tolist(), strict=True):
                picture[mask] = 0.5 * picture[mask] + 0.5 * colours[int(c) % len(colours)]
        ax.imshow(picture, interpolation="nearest")
        for drawn, solid in ((truth[k], False), (predicted[k], True)):
            for j in range(len(drawn.classes)):
                x0, y0, x1, y1 = (float(v) for v in drawn.boxes[j])
                c = int(drawn.classes[j])
                colour = colours[c % len(colours)]
                # pixel edges are at integer coordinates; imshow puts pixel centres there, hence the -0.5
                ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                                           linewidth=1.8 if solid else 1.2, linestyle="-" if solid else "--"))
                if solid:
                    score = "" if drawn.scores is None else f" {float(drawn.scores[j]):.2f}"
                    ax.text(x0 - 0.5, y0 - 1.0, f"{class_names[c]}{score}", color="white", fontsize=7,
                            bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "linewidth": 0})
        if k < len(captions):
            ax.set_title(captions[k], fontsize=8)
    figure.suptitle(f"{title}\ndashed: true boxes; solid: the network's", fontsize=9)
    return save_png(figure, path)


def overlay_file(file: str | Path, boxes: torch.Tensor, labels: Sequence[str], classes: torch.Tensor,
                 num_classes: int, path: Path, masks: Sequence[np.ndarray] = ()) -> Path:
    """The image ``file`` at its own size (enlarged by a whole factor to at least 256 pixels) with each box
    ``(M, 4)`` (the file's pixels) outlined in its class's colour and labelled (``labels``, e.g. ``"cat 0.93"``),
    each of ``masks`` ``(height, width)`` bool (the file's pixels) tinted in that colour; written as PNG to
    ``path``, atomically."""
    from PIL import Image, ImageDraw

    from cnnkit.fileio import atomic_write
    from cnnkit.images import open_upright, png_bytes

    image, _ = open_upright(Path(file))
    with image:
        picture = image.convert("RGB")
    zoom = max(1, -(-OVERLAY_MIN_SIDE // max(picture.size)))  # small images are enlarged, so that labels fit
    if zoom > 1:
        picture = picture.resize((picture.width * zoom, picture.height * zoom), resample=0)  # nearest
        boxes = boxes * zoom
    colours = (class_colours(num_classes + 1)[1:, :3] * 255).round().astype(np.uint8)
    if len(masks):  # each object's mask (the file's pixels), tinted in its class's colour
        pixels = np.asarray(picture).astype(np.float32)
        for mask, c in zip(masks, classes.tolist(), strict=True):
            big = np.repeat(np.repeat(mask, zoom, 0), zoom, 1)
            pixels[big] = 0.5 * pixels[big] + 0.5 * colours[int(c) % len(colours)]
        picture = Image.fromarray(pixels.round().astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(picture.size) / 200))
    for box, label, c in zip(boxes.tolist(), labels, classes.tolist(), strict=True):
        colour = tuple(int(v) for v in colours[int(c) % len(colours)])
        draw.rectangle([round(v) for v in box], outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((box[0], box[1]), label)
        y = max(0.0, box[1] - (bottom - top) - 2)
        draw.rectangle([left, y, right + 2, y + bottom - top + 2], fill=colour)
        draw.text((left + 1, y), label, fill=(255, 255, 255) if sum(colour) < 500 else (0, 0, 0))
    atomic_write(path, png_bytes(np.asarray(picture)))
    return path
