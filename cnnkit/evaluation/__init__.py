"""Evaluation of trained runs: metrics (accuracy, top-5, per-class precision/recall/F1, confusion) and figures."""

from cnnkit.evaluation.metrics import ClassMetrics, EvaluationResult, classification_metrics
from cnnkit.evaluation.run import evaluate

__all__ = ["ClassMetrics", "EvaluationResult", "classification_metrics", "evaluate"]
