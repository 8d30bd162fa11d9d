"""Image files through a trained run: classes (classify), or masks and images written as PNG files (the others)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.models.predict import ImagePrediction, Preprocessing, classify, load_image
from cnnkit.training import network
from cnnkit.training.rundir import atomic_write


def predict_run(run: str | Path, files: Sequence[str | Path], top: int = 5) -> list[ImagePrediction]:
    """Top-``top`` classes of each image file under the run's network.

    Images are read as the run's data was (grey for one channel, RGB for three),
    resized to its input size and normalised with its training statistics.
    Unreadable files get an ``ImagePrediction`` with ``error`` set; the others are still classified.
    """
    model, meta = network.load_trained(run)
    if meta.get("task", "classify") != "classify":
        raise ValueError(f"{run} is a {meta['task']} run, not a classifier; use predict_images")
    prep = _preprocessing(meta)
    return classify(model, prep, files, min(top, len(prep.class_names)))


@dataclass(frozen=True)
class ImageOutput:
    """What a segmentation, reconstruction or denoising run made of one image file, or why it could not."""

    file: str
    outputs: dict[str, str] = field(default_factory=dict)  # kind ("mask", "overlay", "denoised", ...) -> written file
    classes: tuple[tuple[int, str, float], ...] = ()  # segment: (class, name, fraction of the pixels), largest first
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        result: dict[str, Any] = {"file": self.file, "outputs": self.outputs}
        if self.classes:
            result["classes"] = [{"class": c, "name": n, "fraction": round(f, 6)} for c, n, f in self.classes]
        return result


def predict_images(run: str | Path, files: Sequence[str | Path], out: str | Path | None = None) -> list[ImageOutput]:
    """Run a segment, reconstruct or denoise run's network on image files and write what it makes as PNG files.

    Each image is read as the run's data was (grey or RGB), resized to the
    network's input size and prepared as in training. Segmentation writes
    ``NAME.mask.png`` (a class id per pixel, the format ``folder:PATH`` masks
    use) and ``NAME.overlay.png`` (the classes coloured over the image); denoising
    writes ``NAME.denoised.png``, reconstruction ``NAME.reconstructed.png``: at
    the network's input size, into ``out`` (default: beside each image), each
    written atomically. Unreadable files get an ``ImageOutput`` with ``error``.
    """
    model, meta = network.load_trained(run)
    task = meta.get("task", "classify")
    if task == "classify":
        raise ValueError(f"{run} is a classification run; `cnnkit predict` prints its classes instead")
    prep = _preprocessing(meta)
    folder = None if out is None else Path(out)
    results = []
    for file in files:
        try:
            x = load_image(file, prep)[None]  # (1, C, H, W)
        except OSError as error:
            results.append(ImageOutput(str(file), error=str(error)))
            continue
        with torch.inference_mode():
            output = model(x)[0].float()
        target = (folder or Path(file).parent) / Path(file).stem
        if task == "segment":
            results.append(_write_segmentation(file, x[0], output, prep, tuple(meta["class_names"]), target))
        else:
            suffix = "denoised" if task == "denoise" else "reconstructed"
            path = target.with_name(f"{target.name}.{suffix}.png")
            _write_png(path, output.clamp(0, 1).mul(255).round().to(torch.uint8))
            results.append(ImageOutput(str(file), {suffix: str(path)}))
    return results


def _preprocessing(meta: dict[str, Any]) -> Preprocessing:
    transform = meta["transform"]
    channels = int(meta["input_shape"][0])
    mean = tuple(transform["mean"]) if transform.get("mean") else (0.0,) * channels
    std = tuple(transform["std"]) if transform.get("std") else (1.0,) * channels
    return Preprocessing(tuple(meta["input_shape"]), mean, std, "bilinear", tuple(meta["class_names"]))


def _write_png(path: Path, pixels: torch.Tensor) -> None:
    """``(C, H, W)`` or ``(H, W)`` uint8 -> a grey or RGB PNG at ``path``, written atomically."""
    from PIL import Image

    array = pixels.cpu().numpy()
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())


def _write_segmentation(file: str | Path, x: torch.Tensor, logits: torch.Tensor, prep: Preprocessing,
                        class_names: tuple[str, ...], target: Path) -> ImageOutput:
    """The class map ``(H, W)`` of ``logits`` ``(K, H, W)`` as a mask PNG and a colour overlay on the input ``x``."""
    from cnnkit.evaluation.dense_figures import class_colours

    classes = logits.argmax(0).to(torch.uint8)  # (H, W)
    mask_path = target.with_name(f"{target.name}.mask.png")
    overlay_path = target.with_name(f"{target.name}.overlay.png")
    _write_png(mask_path, classes)
    mean, std = torch.tensor(prep.mean).view(-1, 1, 1), torch.tensor(prep.std).view(-1, 1, 1)
    picture = (x * std + mean).clamp(0, 1).expand(3, -1, -1)  # the image as the network saw it, RGB on [0, 1]
    colours = torch.from_numpy(class_colours(len(class_names))).float()[classes.long()].permute(2, 0, 1)  # (4, H, W)
    alpha = 0.65 * colours[3:]
    blended = picture * (1 - alpha) + colours[:3] * alpha
    _write_png(overlay_path, blended.mul(255).round().to(torch.uint8))
    counts = torch.bincount(classes.flatten().long(), minlength=len(class_names))
    share = [(int(c), class_names[int(c)], float(counts[c]) / classes.numel()) for c in counts.argsort(descending=True)
             if counts[c] > 0]
    return ImageOutput(str(file), {"mask": str(mask_path), "overlay": str(overlay_path)}, tuple(share))
