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


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str],
                           split: str = "test") -> EvaluationResult:
    """Loss, accuracy, top-5, per-class and averaged precision/recall/F1 and the confusion matrix.

    ``logits``: ``(N, K)`` float; ``labels``: ``(N,)`` int64 in ``[0, K)``.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    logits, labels = logits.float().cpu(), labels.cpu()
    classes = len(class_names)
    if logits.ndim != 2 or logits.shape[1] != classes or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, {classes}) and labels (N,). Received: {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}")
    predicted = logits.argmax(1).numpy()
    truth = labels.numpy()
    every = list(range(classes))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=every, zero_division=0)
    per_class = [ClassMetrics(i, class_names[i], round(float(precision[i]), 4), round(float(recall[i]), 4),
                              round(float(f1[i]), 4), int(support[i])) for i in every]
    averages = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(truth, predicted, labels=every, average=average, zero_division=0)
        averages[average] = {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4)}
    top5 = None
    if classes > 5:
        top = logits.topk(5, dim=1).indices
        top5 = round(float((top == labels[:, None]).any(1).float().mean()), 4)
    return EvaluationResult(
        split=split, count=len(truth), loss=round(float(F.cross_entropy(logits, labels)), 4),
        accuracy=round(float((predicted == truth).mean()), 4), top5_accuracy=top5, per_class=per_class,
        macro=averages["macro"], weighted=averages["weighted"],
        confusion_matrix=confusion_matrix(truth, predicted, labels=every).tolist(), files={},
    )
