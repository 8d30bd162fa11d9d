"""Classify image files with a pretrained zoo model: the library side of ``cnnkit predict``.

Each image is prepared exactly as the weights were trained: converted to RGB,
resized to the weights' input size with their interpolation, scaled to [0, 1]
and normalised with their mean and std. An image that cannot be read does not
stop the others; its result carries the error instead of predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from cnnkit.models.pretrained import PretrainedWeights
from cnnkit.models.registry import create, info, names

# what Pillow raises for missing, unreadable, truncated, corrupt or oversized ("decompression bomb") files
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Preprocessing:
    """How a network expects its images: what a pretrained weight set or a training run records."""

    input_size: tuple[int, int, int]  # (C, H, W): 1 channel reads images as grey, 3 as RGB
    mean: tuple[float, ...]  # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...]
    interpolation: str  # "bilinear" or "bicubic"
    class_names: tuple[str, ...]

    @classmethod
    def of_weights(cls, weights: PretrainedWeights) -> Preprocessing:
        return cls(weights.input_size, weights.mean, weights.std, weights.interpolation, weights.class_names())


@dataclass(frozen=True)
class ClassScore:
    """One of the top classes of an image."""

    index: int  # class index, e.g. 285
    name: str  # class name, e.g. "Egyptian cat"
    prob: float  # softmax probability


@dataclass(frozen=True)
class ImagePrediction:
    """The top classes of one image file, or why it could not be classified."""

    file: str
    top: tuple[ClassScore, ...] = field(default_factory=tuple)
    error: str | None = None  # set when the file could not be read; `top` is then empty

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``{"file", "top": [{"class", "name", "prob"}]}`` or ``{"file", "error"}``."""
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, "top": [{"class": s.index, "name": s.name, "prob": round(s.prob, 6)} for s in self.top]}


def load_image(path: str | Path, prep: Preprocessing) -> torch.Tensor:
    """Read one image file and prepare it as ``prep`` says: ``file -> (C, H, W)`` float, normalised.

    Raises ``OSError`` naming the file when Pillow cannot read it (missing,
    not an image, truncated, or larger than ``Image.MAX_IMAGE_PIXELS``).
    """
    channels, height, width = prep.input_size
    try:
        with Image.open(path) as opened:
            # phone photos store their rotation in EXIF; the network must see them upright
            image = ImageOps.exif_transpose(opened).convert("L" if channels == 1 else "RGB")
    except _IMAGE_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise OSError(f"cannot read image {str(path)!r}: {reason}") from error
    image = image.resize((width, height), _RESAMPLE[prep.interpolation])
    array = np.asarray(image, dtype=np.float32).reshape(height, width, channels) / 255.0
    pixels = torch.from_numpy(array).permute(2, 0, 1)  # (H, W, C) -> (C, H, W)
    mean = torch.tensor(prep.mean).view(-1, 1, 1)
    std = torch.tensor(prep.std).view(-1, 1, 1)
    return (pixels - mean) / std


def classify(model: nn.Module, prep: Preprocessing, files: Sequence[str | Path], top: int = 5,
             batch_size: int = 16) -> list[ImagePrediction]:
    """Top-``top`` classes of each file under ``model`` (which expects images as ``prep`` says), in order.

    The model runs in eval mode on batches of ``batch_size`` readable images;
    unreadable files get an :class:`ImagePrediction` with ``error`` set.
    """
    class_names = prep.class_names
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= len(class_names):
        raise ValueError(f"`top` must be an int from 1 to {len(class_names)}. Received: top={top!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    results: dict[int, ImagePrediction] = {}
    ready: list[tuple[int, torch.Tensor]] = []
    for i, file in enumerate(files):
        try:
            ready.append((i, load_image(file, prep)))
        except OSError as error:
            results[i] = ImagePrediction(str(file), error=str(error))
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(ready), batch_size):
            chunk = ready[start:start + batch_size]
            probs = model(torch.stack([x for _, x in chunk])).softmax(dim=1)  # (B, num_classes)
            values, indices = probs.topk(top, dim=1)  # (B, top)
            for (i, _), row_values, row_indices in zip(chunk, values.tolist(), indices.tolist(), strict=True):
                scores = tuple(ClassScore(c, class_names[c], p) for p, c in zip(row_values, row_indices, strict=True))
                results[i] = ImagePrediction(str(files[i]), scores)
    return [results[i] for i in range(len(files))]


def predict(files: Sequence[str | Path], model: str = "efficientnet_lite0", top: int = 5,
            batch_size: int = 16) -> list[ImagePrediction]:
    """Classify image files with the pretrained zoo model ``model``; see :func:`classify`.

        >>> [p.top[0].name for p in predict(["chelsea.png"])]  # doctest: +SKIP
        ['Egyptian cat']
    """
    weights = info(model).weights
    if weights is None:
        with_weights = [n for n in names() if info(n).weights is not None]
        raise ValueError(
            f"predict needs pretrained weights and model {model!r} has none; models with weights: "
            f"{', '.join(with_weights)}. Received: model={model!r}"
        )
    return classify(create(model, pretrained=True), Preprocessing.of_weights(weights), files, top, batch_size)
