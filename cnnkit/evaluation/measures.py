"""Scores of dense predictions: segmentation (IoU, Dice, pixel accuracy) and image quality (MSE, PSNR, SSIM).

The counting is done by well-kept implementations: scikit-learn's confusion
matrix for segmentation, scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` for images (on pixels in [0, 1], ``data_range=1``).
From a confusion matrix ``C`` (rows: true class, columns: predicted) with
``TP = C[c, c]``, ``FP`` the rest of column ``c`` and ``FN`` the rest of row ``c``::

    IoU_c  = TP / (TP + FP + FN)          Dice_c = 2 TP / (2 TP + FP + FN)
    pixel accuracy = trace(C) / sum(C)    mean IoU, Dice: averaged over the classes that occur
                                          (in the truth or the prediction)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MAX_PSNR = 100.0  # dB given to an image identical to its target, whose PSNR is infinite


def confusion(predicted: torch.Tensor, truth: torch.Tensor, num_classes: int) -> np.ndarray:
    """``(K, K) int64`` pixel counts, rows the true class: ``predicted``, ``truth`` any equal shapes of class ids."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(truth.reshape(-1).cpu().numpy(), predicted.reshape(-1).cpu().numpy(),
                            labels=list(range(num_classes))).astype(np.int64)


@dataclass(frozen=True)
class SegmentationScores:
    """What a confusion matrix says about a segmentation; per-class lists are in class order."""

    pixel_accuracy: float
    mean_iou: float  # over the classes that occur
    dice: float  # mean Dice over the classes that occur
    per_class_iou: list[float | None]  # None: the class occurs neither in the truth nor in the prediction
    per_class_dice: list[float | None]


def segmentation_scores(matrix: np.ndarray) -> SegmentationScores:
    """Pixel accuracy, per-class IoU and Dice and their means, from a ``(K, K)`` confusion matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    fp, fn = matrix.sum(0) - tp, matrix.sum(1) - tp
    occurs = (tp + fp + fn) > 0
    iou = np.divide(tp, tp + fp + fn, out=np.zeros_like(tp), where=occurs)
    dice = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=occurs)
    return SegmentationScores(
        pixel_accuracy=float(tp.sum() / max(matrix.sum(), 1.0)),
        mean_iou=float(iou[occurs].mean()) if occurs.any() else 0.0,
        dice=float(dice[occurs].mean()) if occurs.any() else 0.0,
        per_class_iou=[float(v) if o else None for v, o in zip(iou, occurs, strict=True)],
        per_class_dice=[float(v) if o else None for v, o in zip(dice, occurs, strict=True)],
    )


def dice_loss(logits: torch.Tensor, truth: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 -`` the soft Dice coefficient of the softmax over ``logits`` ``(N, K, H, W)`` and ``truth`` ``(N, H, W)``.

    Per class over the whole batch, ``(2 sum(p * g) + smooth) / (sum(p) + sum(g) + smooth)``, averaged over
    the classes: a small class weighs as much as the background, which cross-entropy alone does not give.
    """
    probabilities = logits.float().softmax(1)
    one_hot = F.one_hot(truth.long(), logits.shape[1]).permute(0, 3, 1, 2).to(probabilities.dtype)  # (N, K, H, W)
    overlap = (probabilities * one_hot).sum((0, 2, 3))
    sizes = probabilities.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
    return 1.0 - ((2.0 * overlap + smooth) / (sizes + smooth)).mean()


def _images(x: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` tensor -> ``(N, H, W, C)`` float64 NumPy, as scikit-image takes colour images."""
    return x.detach().float().cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)


def psnr(output: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Peak signal-to-noise ratio of each image, ``10 log10(1 / MSE)`` dB on [0, 1] pixels: ``(N, C, H, W)`` x2 -> ``(N,)``."""
    from skimage.metrics import peak_signal_noise_ratio

    out, true = _images(output), _images(target)
    return np.array([MAX_PSNR if np.array_equal(t, o) else min(peak_signal_noise_ratio(t, o, data_range=1.0), MAX_PSNR)
                     for t, o in zip(true, out, strict=True)])


def ssim(output: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Structural similarity of each image (Wang et al. 2004, 7x7 windows) on [0, 1] pixels: -> ``(N,)``.

    Images smaller than 7 pixels a side use the largest odd window that fits.
    """
    from skimage.metrics import structural_similarity

    out, true = _images(output), _images(target)
    side = min(out.shape[1], out.shape[2])
    window = min(7, side if side % 2 else side - 1)
    return np.array([structural_similarity(t, o, data_range=1.0, channel_axis=-1, win_size=window)
                     for t, o in zip(true, out, strict=True)])


def mse(output: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Mean squared error of each image: ``(N, C, H, W)`` x2 -> ``(N,)``."""
    return (output.detach().float() - target.float()).square().mean((1, 2, 3)).cpu().numpy().astype(np.float64)
