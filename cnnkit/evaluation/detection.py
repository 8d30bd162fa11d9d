"""Detection scores: COCO mean average precision through ``pycocotools`` (the reference), and a per-image F1.

Mean average precision (mAP): for each class, the detections of all images are
sorted by score and matched greedily to unmatched true boxes of that class at an
IoU threshold; precision is read at 101 recall levels (made monotone) and
averaged into the class's AP; mAP is the mean over classes, and COCO's headline
number is that mean again over the IoU thresholds 0.50, 0.55, ..., 0.95. We call
``pycocotools.cocoeval.COCOeval``, the implementation every detection paper
reports, rather than re-deriving it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cnnkit.evaluation.boxes import box_iou


@dataclass(frozen=True)
class Detections:
    """One image's detections: ``boxes`` ``(D, 4)`` pixels ``(x0, y0, x1, y1)``, ``scores`` ``(D,)``, ``classes``
    ``(D,)`` int64, best score first."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    cells: torch.Tensor | None = None  # (D,) int64: the grid cell (flattened) each was decoded at, when known
    shapes: list[dict[str, Any]] | None = None  # instance masks as COCO RLEs (:func:`rle`), when there are masks


@dataclass(frozen=True)
class MapScores:
    """COCO's box AP: ``map`` over IoU 0.50:0.95, ``map50``, ``map75``, and per class AP over 0.50:0.95 and at 0.5
    (None: the class has no true box in the split)."""

    map: float
    map50: float
    map75: float
    per_class_ap: list[float | None]
    per_class_ap50: list[float | None]


def rle(masks: np.ndarray) -> list[dict[str, Any]]:
    """``(D, H, W)`` bool masks -> COCO run-length encodings (``counts`` as text), through pycocotools."""
    from pycocotools import mask as coco_mask

    if len(masks) == 0:
        return []
    encoded = coco_mask.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(v) for v in e["size"]], "counts": e["counts"].decode("ascii")} for e in encoded]


def coco_documents(truth_boxes: torch.Tensor, truth_classes: torch.Tensor, detections: Sequence[Detections],
                   class_names: Sequence[str], size: tuple[int, int], files: Sequence[str] | None = None,
                   truth_masks: torch.Tensor | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO ground truth (``annotations.json`` layout) of the true ``truth_boxes`` ``(N, M, 4)`` pixels with
    ``truth_classes`` ``(N, M)`` (``-1``: no object) of images of ``size`` (H, W), and the COCO results list of
    ``detections`` (one per image): image ``i`` is id ``i + 1``, class ``k`` category ``k + 1``, boxes
    ``[x, y, w, h]``; ``files`` (the images' files, when known) become the ``file_name``s. With ``truth_masks``
    ``(N, M, H, W)`` (and ``shapes`` in the detections) both carry RLE ``segmentation``s, for mask AP."""
    h, w = size
    images = [{"id": i + 1, "width": w, "height": h, "file_name": files[i] if files else f"{i + 1}.png"}
              for i in range(len(truth_boxes))]
    annotations: list[dict[str, Any]] = []
    for i in range(len(truth_boxes)):
        real = [j for j in range(truth_classes.shape[1]) if int(truth_classes[i, j]) >= 0]
        truth_shapes: Sequence[dict[str, Any] | None] = (rle(truth_masks[i, real].cpu().numpy())
                                                         if truth_masks is not None else [None] * len(real))
        for j, shape in zip(real, truth_shapes, strict=True):
            x0, y0, x1, y1 = (float(v) for v in truth_boxes[i, j])
            annotation = {"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(truth_classes[i, j]) + 1,
                          "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            if shape is not None and truth_masks is not None:
                annotation["segmentation"] = shape
                annotation["area"] = float(truth_masks[i, j].sum())  # COCO's area of a mask: its pixels
            annotations.append(annotation)
    results = []
    for i, found in enumerate(detections):
        outlines: Sequence[dict[str, Any] | None] = (found.shapes if found.shapes is not None
                                                     else [None] * len(found.scores))
        for b, s, c, shape in zip(found.boxes, found.scores, found.classes, outlines, strict=True):
            result = {"image_id": i + 1, "category_id": int(c) + 1, "score": round(float(s), 6),
                      "bbox": [round(float(v), 3) for v in (b[0], b[1], b[2] - b[0], b[3] - b[1])]}
            if shape is not None:
                result["segmentation"] = shape
            results.append(result)
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def coco_map(truth_boxes: torch.Tensor, truth_classes: torch.Tensor, detections: Sequence[Detections],
             num_classes: int, size: tuple[int, int]) -> MapScores:
    """COCO box mAP of ``detections`` (one per image) against the true ``truth_boxes`` ``(N, M, 4)`` pixels with
    ``truth_classes`` ``(N, M)`` (``-1``: no object), images of ``size`` (H, W), computed by pycocotools."""
    truth, results = coco_documents(truth_boxes, truth_classes, detections, [str(k) for k in range(num_classes)],
                                    size)
    return evaluate_documents(truth, results)


def evaluate_documents(truth: dict[str, Any], results: list[dict[str, Any]], kind: str = "bbox") -> MapScores:
    """pycocotools' ``COCOeval`` of COCO ``results`` against the ground-truth document ``truth``: box AP
    (``kind="bbox"``) or mask AP (``"segm"``, both documents carrying RLE ``segmentation``s)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    num_classes = len(truth["categories"])
    present = {a["category_id"] for a in truth["annotations"]}
    if not truth["annotations"] or not results:
        empty = [None if k + 1 not in present else 0.0 for k in range(num_classes)]
        return MapScores(0.0, 0.0, 0.0, empty, list(empty))
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        reference = COCO()
        reference.dataset = truth
        reference.createIndex()
        evaluation = COCOeval(reference, reference.loadRes(results), kind)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"]  # (IoU thresholds, recall levels, classes, areas, max detections)
    per_class: list[float | None] = []
    per_class50: list[float | None] = []
    for k in range(num_classes):
        for values, out in ((precision[:, :, k, 0, -1], per_class), (precision[0, :, k, 0, -1], per_class50)):
            # every (IoU threshold and) recall level, all areas, 100 detections; -1: no true box of the class
            out.append(float(values[values > -1].mean()) if (values > -1).any() else None)
    stats = evaluation.stats
    return MapScores(max(float(stats[0]), 0.0), max(float(stats[1]), 0.0), max(float(stats[2]), 0.0), per_class,
                     per_class50)


def image_f1(found: Detections, boxes: torch.Tensor, classes: torch.Tensor, min_score: float = 0.3,
             iou_threshold: float = 0.5) -> float:
    """F1 of one image's detections scoring at least ``min_score`` against its true ``boxes`` ``(M, 4)`` and
    ``classes`` ``(M,)`` (``-1``: none): each detection, best first, takes the unmatched true box of its class with
    the highest IoU, if at least ``iou_threshold``. 1.0 for an image with neither objects nor detections."""
    keep = found.scores >= min_score
    det_boxes, det_classes = found.boxes[keep], found.classes[keep]
    real = classes >= 0
    true_boxes, true_classes = boxes[real], classes[real]
    if len(det_boxes) == 0 and len(true_boxes) == 0:
        return 1.0
    if len(det_boxes) == 0 or len(true_boxes) == 0:
        return 0.0
    overlaps = box_iou(det_boxes.float(), true_boxes.float())  # (D, T)
    overlaps[det_classes[:, None] != true_classes[None, :]] = 0.0
    taken = np.zeros(len(true_boxes), dtype=bool)
    hits = 0
    for row in overlaps.cpu().numpy():
        row = np.where(taken, 0.0, row)
        best = int(row.argmax())
        if row[best] >= iou_threshold:
            taken[best] = True
            hits += 1
    return 2.0 * hits / (len(det_boxes) + len(true_boxes))
