"""Boxes worked by hand: intersection over union (and GIoU) of two boxes, and non-maximum suppression step by step.

A box is ``x0 y0 x1 y1``: its left, top, right and bottom edges (``x1 > x0``,
``y1 > y0``), so its area is ``(x1 - x0) * (y1 - y0)``. Two boxes intersect in
the box between the larger left/top edges and the smaller right/bottom ones
(empty when those cross); IoU = intersection / union, union = A + B -
intersection. GIoU also subtracts the share of the smallest box enclosing both
that the union leaves empty, so that it is negative for boxes far apart (the
loss ``1 - GIoU`` of ``--task localize``).

Non-maximum suppression: a detector finds one object many times over; going
down the scores, each box still standing is kept and removes every later box of
its class that overlaps it by IoU above the threshold. The numbers are computed
here in plain Python and checked against :mod:`cnnkit.evaluation.boxes`, the
code detection runs use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cnnkit.explain.matrices import number
from cnnkit.explain.working import Calculation

Box = tuple[float, float, float, float]

# a detector's raw output on one photo: a cat found three times, a dog twice
NMS_EXAMPLE = ("10 10 50 60 0.9 cat; 12 8 52 58 0.8 cat; 30 30 70 80 0.7 cat; 60 20 100 70 0.85 dog; "
               "62 22 98 72 0.6 dog")


def parse_box(text: str, name: str) -> Box:
    """``"x0 y0 x1 y1"`` (commas or spaces) -> a box; anything else is a ValueError naming ``name``."""
    try:
        values = [float(v) for v in re.split(r"[\s,]+", text.strip()) if v]
    except ValueError:
        values = []
    if len(values) != 4 or not (values[2] > values[0] and values[3] > values[1]):
        raise ValueError(f"{name} must be four numbers x0 y0 x1 y1 with x1 > x0 and y1 > y0 (left, top, right, "
                         f"bottom). Received: {text!r}")
    return (values[0], values[1], values[2], values[3])


def _area(b: Box) -> float:
    return (b[2] - b[0]) * (b[3] - b[1])


def _iou(a: Box, b: Box) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / (_area(a) + _area(b) - inter)


def _g(value: float) -> str:
    return f"{number(round(value, 6)):g}"


def explain_iou(a: str | Box, b: str | Box) -> Calculation:
    """IoU and GIoU of two boxes, each number worked.

    >>> c = explain_iou("0 0 2 2", "1 1 3 3")
    >>> round(c.output["iou"], 4), round(c.output["giou"], 4), c.extra["agrees_with_box_iou"]
    (0.1429, -0.0794, True)
    """
    import torch

    from cnnkit.evaluation.boxes import box_iou, giou_loss

    a = parse_box(a, "--a") if isinstance(a, str) else a
    b = parse_box(b, "--b") if isinstance(b, str) else b
    left, top, right, bottom = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    width, height = max(0.0, right - left), max(0.0, bottom - top)
    inter = width * height
    union = _area(a) + _area(b) - inter
    iou = inter / union
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    giou = iou - (hull - union) / hull
    steps = [
        {"label": "area A", "expression": f"({_g(a[2])} - {_g(a[0])}) * ({_g(a[3])} - {_g(a[1])}) = {_g(_area(a))}"},
        {"label": "area B", "expression": f"({_g(b[2])} - {_g(b[0])}) * ({_g(b[3])} - {_g(b[1])}) = {_g(_area(b))}"},
        {"label": "intersection", "expression":
            f"x from max({_g(a[0])}, {_g(b[0])}) = {_g(left)} to min({_g(a[2])}, {_g(b[2])}) = {_g(right)}, y from "
            f"max({_g(a[1])}, {_g(b[1])}) = {_g(top)} to min({_g(a[3])}, {_g(b[3])}) = {_g(bottom)}: "
            f"max(0, {_g(right - left)}) * max(0, {_g(bottom - top)}) = {_g(inter)}"},
        {"label": "union", "expression": f"A + B - intersection = {_g(_area(a))} + {_g(_area(b))} - {_g(inter)} "
                                         f"= {_g(union)}"},
        {"label": "IoU", "expression": f"intersection / union = {_g(inter)} / {_g(union)} = {iou:.4f}"},
        {"label": "enclosing box", "expression":
            f"({_g(min(a[0], b[0]))}, {_g(min(a[1], b[1]))}) to ({_g(max(a[2], b[2]))}, {_g(max(a[3], b[3]))}): "
            f"area {_g(hull)}"},
        {"label": "GIoU", "expression": f"IoU - (enclosing - union) / enclosing = {iou:.4f} - ({_g(hull)} - "
                                        f"{_g(union)}) / {_g(hull)} = {giou:.4f}"},
    ]
    ta, tb = torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    agrees = abs(float(box_iou(ta, tb)[0, 0]) - iou) < 1e-9 and abs(float(giou_loss(ta, tb)[0]) - (1 - giou)) < 1e-9
    verdict = ("counts as a match (IoU >= 0.5: ILSVRC's correct localisation, COCO's AP50)" if iou >= 0.5
               else "is not a match at IoU 0.5")
    notes = [f"the pair {verdict}; COCO's mAP averages over the thresholds 0.50, 0.55, ..., 0.95",
             "GIoU is IoU when one box holds the other's hull; it falls to -1 as boxes move apart, so 1 - GIoU "
             "still has a gradient when they do not overlap (the box loss of --task localize)",
             "cnnkit.evaluation.boxes.box_iou and giou_loss give " + ("the same numbers" if agrees else "OTHER numbers")]
    return Calculation("iou", f"IoU of A = ({_g(a[0])}, {_g(a[1])}, {_g(a[2])}, {_g(a[3])}) and B = ({_g(b[0])}, "
                              f"{_g(b[1])}, {_g(b[2])}, {_g(b[3])}): {iou:.4f}",
                       {"a": [number(v) for v in a], "b": [number(v) for v in b]},
                       {"iou": round(iou, 6), "giou": round(giou, 6), "intersection": number(inter),
                        "union": number(union)}, steps, notes,
                       extra={"agrees_with_box_iou": agrees})


def parse_detections(text: str) -> list[tuple[Box, float, str]]:
    """``"x0 y0 x1 y1 score [class]; ..."`` -> boxes, scores and classes (``"object"`` when not given)."""
    found = []
    for k, part in enumerate(p for p in text.split(";") if p.strip()):
        fields = part.split()
        label = f"--boxes entry {k + 1}"
        if len(fields) not in (5, 6):
            raise ValueError(f"{label}: each entry is x0 y0 x1 y1 score [class], entries separated by ';'. Received: "
                             f"{part.strip()!r}")
        box = parse_box(" ".join(fields[:4]), label)
        try:
            score = float(fields[4])
        except ValueError:
            raise ValueError(f"{label}: the score must be a number. Received: {fields[4]!r}") from None
        found.append((box, score, fields[5] if len(fields) == 6 else "object"))
    if not found:
        raise ValueError(f"--boxes: no box given. Received: --boxes={text!r}")
    return found


def explain_nms(boxes: str | Sequence[tuple[Box, float, str]] = NMS_EXAMPLE, iou_threshold: float = 0.5) -> Calculation:
    """Class-wise non-maximum suppression, one step per box kept.

    >>> c = explain_nms()
    >>> c.output["kept"], c.extra["agrees_with_nms"]
    ([1, 4, 3], True)
    """
    import torch

    from cnnkit.evaluation.boxes import nms

    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"--iou must be between 0 and 1. Received: --iou={iou_threshold}")
    found = parse_detections(boxes) if isinstance(boxes, str) else list(boxes)
    order = sorted(range(len(found)), key=lambda i: -found[i][1])
    standing, kept = list(order), []
    steps: list[dict[str, Any]] = []
    steps.append({"label": "sort by score", "expression": ", ".join(
        f"#{i + 1} {found[i][2]} {found[i][1]:g}" for i in order)})
    while standing:
        best = standing.pop(0)
        kept.append(best)
        details, removed = [], []
        for other in standing:
            if found[other][2] != found[best][2]:
                details.append(f"#{other + 1} is a {found[other][2]}: another class, not compared")
                continue
            overlap = _iou(found[best][0], found[other][0])
            gone = overlap > iou_threshold
            details.append(f"IoU(#{best + 1}, #{other + 1}) = {overlap:.4f} "
                           + (f"> {iou_threshold:g}: removed" if gone else f"<= {iou_threshold:g}: stays"))
            if gone:
                removed.append(other)
        standing = [i for i in standing if i not in removed]
        steps.append({"label": f"keep #{best + 1}", "expression":
                      f"{found[best][2]} {found[best][1]:g} at ({', '.join(_g(v) for v in found[best][0])}), the "
                      f"best score left" + (f"; removes {', '.join(f'#{i + 1}' for i in removed)}" if removed else ""),
                      "details": details})
    tensor = torch.tensor([f[0] for f in found], dtype=torch.float64)
    names = sorted({f[2] for f in found})
    classes = torch.tensor([names.index(f[2]) for f in found])
    theirs = nms(tensor, torch.tensor([f[1] for f in found], dtype=torch.float64), classes, iou_threshold).tolist()
    agrees = theirs == kept
    notes = [f"kept {len(kept)} of {len(found)} boxes: " + ", ".join(f"#{i + 1} {found[i][2]}" for i in kept),
             "boxes of different classes never suppress each other (class-wise NMS); a lower threshold removes more",
             "cnnkit.evaluation.boxes.nms (what detect runs use) keeps " + ("the same boxes" if agrees else
                                                                            f"OTHER boxes: {theirs}")]
    return Calculation("nms", f"non-maximum suppression of {len(found)} boxes at IoU {iou_threshold:g}",
                       {"boxes": "; ".join(f"#{k + 1} {' '.join(_g(v) for v in f[0])} {f[1]:g} {f[2]}"
                                           for k, f in enumerate(found)), "iou_threshold": iou_threshold},
                       {"kept": [i + 1 for i in kept]}, steps, notes,
                       extra={"detections": [{"number": k + 1, "box": [number(v) for v in f[0]], "score": f[1],
                                              "class": f[2]} for k, f in enumerate(found)],
                              "agrees_with_nms": agrees})
