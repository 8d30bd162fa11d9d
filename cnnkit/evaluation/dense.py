"""Evaluation of networks that predict images: segmentation (IoU, Dice, pixel accuracy) and reconstruction/denoising.

Both run the task's own batches (:meth:`cnnkit.training.tasks.Task.predict`), so
the held-out images are prepared, and for denoising corrupted, exactly as in
training's per-epoch evaluation. The counting is :mod:`cnnkit.training.measures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.data import BatchTransform
from cnnkit.training import measures
from cnnkit.training.hardware import Runtime
from cnnkit.training.tasks import Denoise, Task


@dataclass
class SegmentationResult:
    """Everything ``cnnkit evaluate`` reports for a segmentation run; ``as_dict()`` is ``metrics.json``."""

    split: str
    count: int  # images
    loss: float  # cross-entropy + Dice, as trained
    pixel_accuracy: float
    mean_iou: float  # over the classes that occur in the truth or the prediction
    dice: float  # mean Dice over the same classes
    class_names: list[str]
    per_class_iou: list[float | None]  # None: the class occurs neither in the truth nor in the prediction
    per_class_dice: list[float | None]
    confusion_matrix: list[list[int]]  # pixels; rows: true class, columns: predicted class
    files: dict[str, str] = field(default_factory=dict)
    task: str = "segment"

    def as_dict(self) -> dict[str, Any]:
        pixels = np.asarray(self.confusion_matrix)
        return {
            "task": self.task, "split": self.split, "count": self.count, "loss": self.loss,
            "mean_iou": self.mean_iou, "dice": self.dice, "pixel_accuracy": self.pixel_accuracy,
            "per_class_iou": dict(zip(self.class_names, self.per_class_iou, strict=True)),
            "per_class": [{"class": i, "name": name, "iou": iou, "dice": dice, "pixels": int(pixels[i].sum()),
                           "predicted_pixels": int(pixels[:, i].sum())}
                          for i, (name, iou, dice) in enumerate(zip(self.class_names, self.per_class_iou,
                                                                    self.per_class_dice, strict=True))],
            "confusion_matrix": self.confusion_matrix, "files": self.files,
        }


@dataclass
class ReconstructionResult:
    """What ``cnnkit evaluate`` reports for a reconstruct or denoise run (pixels on [0, 1])."""

    task: str  # "reconstruct" or "denoise"
    split: str
    count: int
    mse: float  # of the output against the clean image, the training loss
    psnr: float  # mean over images, dB
    ssim: float  # mean over images
    noise: str | None = None  # denoise: the corruption
    mse_noisy: float | None = None  # denoise: the corrupted input against the clean image
    psnr_noisy: float | None = None
    ssim_noisy: float | None = None
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"task": self.task, "split": self.split, "count": self.count, "loss": self.mse,
                                  "mse": self.mse, "psnr": self.psnr, "ssim": self.ssim}
        if self.noise is not None:
            values.update({"noise": self.noise, "mse_noisy": self.mse_noisy, "psnr_noisy": self.psnr_noisy,
                           "ssim_noisy": self.ssim_noisy,
                           "psnr_gain": None if self.psnr_noisy is None else round(self.psnr - self.psnr_noisy, 4)})
        values["files"] = self.files
        return values


def evaluate_segmentation(task: Task, model: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                          transform: BatchTransform, runtime: Runtime, class_names: list[str], split: str,
                          seed: int = 0) -> tuple[SegmentationResult, torch.Tensor]:
    """Scores of ``model`` on uint8 ``images`` ``(N, C, H, W)`` with true ``masks`` ``(N, H, W)``,
    and its predicted class maps ``(N, H, W) uint8`` (for the figures)."""
    total, matrix, predicted = 0.0, np.zeros((len(class_names),) * 2, dtype=np.int64), []
    for _, y, output in task.predict(model, images, masks, transform, runtime, seed):
        total += float(task.loss(output, y)) * len(y)
        classes = output.argmax(1)  # (B, H, W)
        matrix += measures.confusion(classes, y, len(class_names))
        predicted.append(classes.to(torch.uint8).cpu())
    scores = measures.segmentation_scores(matrix)
    result = SegmentationResult(split, len(images), round(total / len(images), 4), round(scores.pixel_accuracy, 4),
                                round(scores.mean_iou, 4), round(scores.dice, 4), list(class_names),
                                [None if v is None else round(v, 4) for v in scores.per_class_iou],
                                [None if v is None else round(v, 4) for v in scores.per_class_dice],
                                matrix.tolist())
    return result, torch.cat(predicted)


def evaluate_reconstruction(task: Task, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                            transform: BatchTransform, runtime: Runtime, split: str, seed: int = 0,
                            shown: int = 8) -> tuple[ReconstructionResult, dict[str, torch.Tensor]]:
    """MSE, PSNR and SSIM of ``model``'s outputs against the clean images (and, for denoising, of the
    corrupted inputs), and the first ``shown`` inputs, outputs and clean images on [0, 1] for the figures."""
    sums = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0, "mse_noisy": 0.0, "psnr_noisy": 0.0, "ssim_noisy": 0.0}
    examples: dict[str, list[torch.Tensor]] = {"input": [], "output": [], "clean": []}
    denoising = isinstance(task, Denoise)
    for x, y, output in task.predict(model, images, targets, transform, runtime, seed):
        output = output.clamp(0.0, 1.0)  # a table without a final sigmoid may overshoot; PSNR is defined on [0, 1]
        sums["mse"] += float(measures.mse(output, y).sum())
        sums["psnr"] += float(measures.psnr(output, y).sum())
        sums["ssim"] += float(measures.ssim(output, y).sum())
        if denoising:
            sums["mse_noisy"] += float(measures.mse(x, y).sum())
            sums["psnr_noisy"] += float(measures.psnr(x, y).sum())
            sums["ssim_noisy"] += float(measures.ssim(x, y).sum())
        missing = shown - sum(len(t) for t in examples["input"])
        if missing > 0:
            for key, value in (("input", x), ("output", output), ("clean", y)):
                examples[key].append(value[:missing].float().cpu())
    mean = {key: round(value / len(images), 4) for key, value in sums.items()}
    result = ReconstructionResult(task.name, split, len(images), round(sums["mse"] / len(images), 6), mean["psnr"],
                                  mean["ssim"])
    if isinstance(task, Denoise):
        result.noise = str(task.noise)
        result.mse_noisy = round(sums["mse_noisy"] / len(images), 6)
        result.psnr_noisy, result.ssim_noisy = mean["psnr_noisy"], mean["ssim_noisy"]
    return result, {key: torch.cat(value) for key, value in examples.items()}
