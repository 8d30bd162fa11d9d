"""Box arithmetic, non-maximum suppression and mAP, each against an independent NumPy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.evaluation.boxes import box_iou, giou_loss, nms
from cnnkit.evaluation.detection import Detections, coco_map, image_f1


def _random_boxes(rng: np.random.Generator, n: int, size: float = 50.0) -> np.ndarray:
    corner = rng.uniform(0, size, (n, 2))
    return np.concatenate([corner, corner + rng.uniform(1, size / 2, (n, 2))], 1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_iou_and_giou_equal_the_formulas() -> None:
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    expected = np.array([[_iou(x, y) for y in b] for x in a])
    assert np.allclose(box_iou(torch.tensor(a), torch.tensor(b)).numpy(), expected)
    pairs = list(zip(a[:5], b, strict=True))
    hull = np.array([(max(x[2], y[2]) - min(x[0], y[0])) * (max(x[3], y[3]) - min(x[1], y[1])) for x, y in pairs])
    inter_union = [(_iou(x, y), (x[2] - x[0]) * (x[3] - x[1]) + (y[2] - y[0]) * (y[3] - y[1])) for x, y in pairs]
    union = np.array([total / (1 + iou) for iou, total in inter_union])  # union = (A + B) / (1 + IoU)
    giou = np.array([iou for iou, _ in inter_union]) - (hull - union) / hull
    assert np.allclose(giou_loss(torch.tensor(a[:5]), torch.tensor(b)).numpy(), 1 - giou)
    assert float(giou_loss(torch.tensor(a[:1]), torch.tensor(a[:1]))) == pytest.approx(0.0, abs=1e-7)


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> list[int]:
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(classes[j] != classes[i] or _iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(int(i))
    return kept


def test_nms_keeps_what_greedy_suppression_within_each_class_keeps() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        boxes = _random_boxes(rng, 40, 30.0)
        scores, classes = rng.random(40), rng.integers(0, 3, 40)
        kept = nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(classes), 0.4).tolist()
        assert kept == _greedy_nms(boxes, scores, classes, 0.4)


def _ap50(truth: list[tuple[np.ndarray, np.ndarray]], found: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
          num_classes: int) -> float:
    """COCO's AP at IoU 0.5 written out: per class, detections by score, each to the best unmatched true box,
    101-point interpolated precision; the mean over classes with true boxes."""
    aps = []
    for k in range(num_classes):
        positives = sum(int((c == k).sum()) for _, c in truth)
        if positives == 0:
            continue
        records = [(s, i, b) for i, (boxes, scores, classes) in enumerate(found)
                   for b, s, c in zip(boxes, scores, classes, strict=True) if c == k]
        records.sort(key=lambda r: -r[0])
        taken = [np.zeros(len(c), bool) for _, c in truth]
        hits = []
        for _, i, box in records:
            true_boxes, true_classes = truth[i]
            best, best_iou = -1, 0.5 - 1e-10
            for j, (t, c) in enumerate(zip(true_boxes, true_classes, strict=True)):
                if c == k and not taken[i][j] and _iou(box, t) >= best_iou:
                    best, best_iou = j, _iou(box, t)
            if best >= 0:
                taken[i][best] = True
            hits.append(best >= 0)
        tp = np.cumsum(hits)
        recall = tp / positives
        precision = tp / np.arange(1, len(hits) + 1)
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        sampled = [precision[np.searchsorted(recall, r, side="left")] if np.searchsorted(recall, r, side="left") <
                   len(recall) else 0.0 for r in np.linspace(0, 1, 101)]
        aps.append(float(np.mean(sampled)))
    return float(np.mean(aps))


def test_map50_is_what_the_written_out_ap_gives_and_perfect_boxes_score_1() -> None:
    rng = np.random.default_rng(2)
    n, m, k = 30, 4, 3
    truth_boxes = np.stack([_random_boxes(rng, m, 60.0) for _ in range(n)])
    truth_classes = rng.integers(0, k, (n, m))
    truth_classes[rng.random((n, m)) < 0.25] = -1
    found_np = []
    for i in range(n):  # jittered copies of the true boxes, some with the wrong class, plus false alarms
        corner = truth_boxes[i][:, :2] + rng.normal(0, 3, (m, 2))  # moved, and resized by up to 25%
        size = (truth_boxes[i][:, 2:] - truth_boxes[i][:, :2]) * rng.uniform(0.75, 1.25, (m, 2))
        boxes = np.concatenate([np.concatenate([corner, corner + size], 1), _random_boxes(rng, 3, 60.0)])
        classes = np.concatenate([np.where(rng.random(m) < 0.8, np.maximum(truth_classes[i], 0), rng.integers(0, k, m)),
                                  rng.integers(0, k, 3)])
        found_np.append((boxes, rng.random(m + 3), classes))
    found = [Detections(torch.tensor(b), torch.tensor(s), torch.tensor(c)) for b, s, c in found_np]
    scores = coco_map(torch.tensor(truth_boxes), torch.tensor(truth_classes), found, k, (100, 100))
    truth = [(truth_boxes[i][truth_classes[i] >= 0], truth_classes[i][truth_classes[i] >= 0]) for i in range(n)]
    assert scores.map50 == pytest.approx(_ap50(truth, found_np, k), abs=1e-6)
    assert 0 < scores.map < scores.map50 < 1
    perfect = [Detections(torch.tensor(b), torch.ones(len(b)), torch.tensor(c)) for b, c in truth]
    exact = coco_map(torch.tensor(truth_boxes), torch.tensor(truth_classes), perfect, k, (100, 100))
    assert (exact.map, exact.map50, exact.per_class_ap50) == (1.0, 1.0, [1.0] * k)


def test_image_f1_counts_matches_of_the_right_class() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    classes = torch.tensor([0, 1, -1])
    found = Detections(torch.tensor([[1.0, 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
                       torch.tensor([0.9, 0.8, 0.1]), torch.tensor([0, 0, 1]))
    # the first matches (IoU 0.81), the second has the wrong class, the third scores below 0.3: 1 hit, 2 + 2 boxes
    assert image_f1(found, boxes, classes) == pytest.approx(2 * 1 / (2 + 2))
