"""Boxes in torch: intersection over union, the generalised IoU loss, class-wise non-maximum suppression.

Boxes are ``(x0, y0, x1, y1)`` with ``x1 > x0`` and ``y1 > y0``, in pixels or in
fractions of the image (every function here is scale-free). IoU is the area of
the intersection over the area of the union; GIoU (Rezatofighi et al., 2019)
subtracts the part of the smallest enclosing box that the union does not
cover, so that boxes that do not touch still get a gradient.

>>> import torch
>>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]]); b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
>>> round(float(box_iou(a, b)), 4)  # 1 / (4 + 4 - 1)
0.1429
"""

from __future__ import annotations

import torch


def _areas(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU: ``(N, 4)`` and ``(M, 4)`` -> ``(N, M)``."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)  # (N, M)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return inter / union.clamp(min=1e-12)


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows: ``(..., 4)`` and ``(..., 4)`` -> ``(...)``."""
    inter = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    return inter / (_areas(a) + _areas(b) - inter).clamp(min=1e-12)


def giou_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - GIoU`` of matching rows, ``(..., 4)`` -> ``(...)``, in [0, 2]: 0 for equal boxes."""
    inter = (torch.minimum(predicted[..., 2:], target[..., 2:]) -
             torch.maximum(predicted[..., :2], target[..., :2])).clamp(min=0).prod(-1)
    union = (_areas(predicted) + _areas(target) - inter).clamp(min=1e-12)
    hull = (torch.maximum(predicted[..., 2:], target[..., 2:]) -
            torch.minimum(predicted[..., :2], target[..., :2])).clamp(min=0).prod(-1).clamp(min=1e-12)
    return 1.0 - (inter / union - (hull - union) / hull)


def nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float = 0.5) -> torch.Tensor:
    """Class-wise non-maximum suppression: indices of the boxes kept, best score first.

    ``boxes`` ``(N, 4)``, ``scores`` ``(N,)``, ``classes`` ``(N,)``. Going down the
    scores, a box is dropped when it overlaps a kept box *of its class* by IoU
    above ``iou_threshold``; boxes of different classes never suppress each
    other (they are moved apart by an offset per class, the usual trick, so
    one IoU matrix serves every class).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)  # ties: the earlier box first, on every platform
    span = float((boxes.max() - boxes.min()).abs()) + 1.0
    shifted = boxes[order] + (classes[order].to(boxes.dtype) * span * 2)[:, None]  # classes never overlap
    overlaps = box_iou(shifted, shifted)  # (N, N)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for i in range(len(order)):  # greedy, in score order: N is small after the top-k
        if keep[i]:
            later = overlaps[i, i + 1:] > iou_threshold
            keep[i + 1:] &= ~later
    return order[keep]
