"""Classification metrics from logits and labels (scikit-learn does the counting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ClassMetrics:
    """Precision, recall and F1 of one class, and how many test images belong to it."""

    index: int
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvaluationResult:
    """Everything ``cnnkit evaluate`` reports; ``as_dict()`` is the JSON of ``metrics.json``."""

    split: str  # "test" (official) or "val"
    count: int
    loss: float
    accuracy: float
    top5_accuracy: float | None  # None with fewer than 6 classes
    per_class: list[ClassMetrics]
    macro: dict[str, float]
    weighted: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    files: dict[str, str]  # name -> path of what was written (metrics.json, figures)
    # the images of mistakes.png, most confident first: {"index": in the split, "file": its path or None}
    mistakes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def confusion_normalized(self) -> list[list[float]]:
        """Each row divided by its count: the fraction of each true class predicted as each class."""
        matrix = np.asarray(self.confusion_matrix, dtype=np.float64)
        totals = matrix.sum(axis=1, keepdims=True)
        return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0).round(4).tolist()

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split, "count": self.count, "loss": self.loss, "accuracy": self.accuracy,
            "top5_accuracy": self.top5_accuracy,
            "per_class": [{"class": c.index, "name": c.name, "precision": c.precision, "recall": c.recall,
                           "f1": c.f1, "support": c.support} for c in self.per_class],
            "macro_avg": self.macro, "weighted_avg": self.weighted,
            "confusion_matrix": self.confusion_matrix, "confusion_matrix_normalized": self.confusion_normalized,
            "files": self.files, "mistakes": self.mistakes,
        }


def per_class_scores(confusion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Precision, recall, F1 and support per class from a ``(K, K)`` confusion matrix (rows: true class, columns:
    predicted), float64, 0 where a ratio has nothing to divide (scikit-learn's ``zero_division=0``).

    F1 is ``2 TP / (2 TP + FP + FN)``, the harmonic mean of precision and recall without its 0/0 case.

    >>> [round(v, 3) for v in per_class_scores(torch.tensor([[3, 1], [0, 2]]))[2].tolist()]
    [0.857, 0.8]
    """
    counts = confusion.to(torch.float64)
    true_positive = counts.diagonal()
    predicted, support = counts.sum(0), counts.sum(1)

    def ratio(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        return torch.where(bottom > 0, top / bottom.clamp(min=1e-300), torch.zeros_like(top))

    return (ratio(true_positive, predicted), ratio(true_positive, support),
            ratio(2 * true_positive, predicted + support), support)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str],
                           split: str = "test") -> EvaluationResult:
    """Loss, accuracy, top-5, per-class and averaged precision/recall/F1 and the confusion matrix.

    ``logits``: ``(N, K)`` float; ``labels``: ``(N,)`` int64 in ``[0, K)``. Computed in torch from the confusion
    matrix (importing scikit-learn cost more than the whole evaluation); ``tests/test_metrics.py`` holds them equal
    to scikit-learn's ``precision_recall_fscore_support`` and ``confusion_matrix``.
    """
    logits, labels = logits.float().cpu(), labels.cpu()
    classes = len(class_names)
    if logits.ndim != 2 or logits.shape[1] != classes or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, {classes}) and labels (N,). Received: {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}")
    predicted = logits.argmax(1)
    confusion = torch.bincount(labels * classes + predicted, minlength=classes * classes).view(classes, classes)
    precision, recall, f1, support = per_class_scores(confusion)
    per_class = [ClassMetrics(i, class_names[i], round(float(precision[i]), 4), round(float(recall[i]), 4),
                              round(float(f1[i]), 4), int(support[i])) for i in range(classes)]
    weights = support / support.sum() if float(support.sum()) > 0 else torch.zeros_like(support)
    averages = {name: {"precision": round(float(reduce(precision)), 4), "recall": round(float(reduce(recall)), 4),
                       "f1": round(float(reduce(f1)), 4)}
                for name, reduce in (("macro", torch.mean), ("weighted", lambda v: (v * weights).sum()))}
    top5 = None
    if classes > 5:
        top = logits.topk(5, dim=1).indices
        top5 = round(float((top == labels[:, None]).any(1).float().mean()), 4)
    return EvaluationResult(
        split=split, count=len(labels), loss=round(float(F.cross_entropy(logits, labels)), 4),
        accuracy=round(float((predicted == labels).float().mean()), 4), top5_accuracy=top5, per_class=per_class,
        macro=averages["macro"], weighted=averages["weighted"], confusion_matrix=confusion.tolist(), files={},
    )
