"""What ``cnnkit evaluate`` reports for networks that predict images: segmentation and reconstruction/denoising.

The tasks compute them (:meth:`cnnkit.tasks.Segment.scores`,
:meth:`cnnkit.tasks.Reconstruct.scores`) with the task's own batches, so the
held-out images are prepared, and for denoising corrupted, exactly as in
training's per-epoch evaluation. The counting is :mod:`cnnkit.evaluation.measures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
