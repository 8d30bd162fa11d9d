"""Object detection (deck 001: "CAT, DOG, DUCK", a box each), the CenterNet way (:mod:`cnnkit.models.centernet`).

Targets, per image and class: a heatmap on the network's grid (``H/s x W/s``,
``s`` the input's size over the grid's) holding at each object's centre cell a
peak of 1 that falls off as a Gaussian, sigma = the box's size / 6 per axis
(at least half a cell); where objects of a class overlap, the larger value.
At the centre cell the network also learns the box's width and height (in
cells) and the centre's offset within the cell.

Loss (Zhou et al., 2019): the penalty-reduced focal loss on the heatmaps,
``-(1 - p)^2 log p`` at the peaks and ``-(1 - Y)^4 p^2 log(1 - p)`` elsewhere,
summed over the image and divided by the number of objects; plus
``0.1 x`` L1 of the size and ``1 x`` L1 of the offset at the centre cells.

Decoding: the peaks are the cells equal to the 3x3 max-pool of the heatmap;
the 100 best over all classes scoring at least 0.05 become boxes, and class-wise non-maximum
suppression (:func:`cnnkit.evaluation.boxes.nms`, IoU 0.5) removes duplicates.

Scores: COCO box mAP (0.50:0.95), AP50 and AP75 through pycocotools, AP50 per
class, and the training metric ``f1``: each image's F1 of the detections
scoring at least 0.3, matched at IoU 0.5, averaged over images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset
from cnnkit.evaluation.box_figures import Drawn, boxes_figure
from cnnkit.evaluation.boxes import nms
from cnnkit.evaluation.detection import Detections, coco_documents, coco_map, evaluate_documents, image_f1
from cnnkit.fileio import atomic_write, json_text
from cnnkit.images import ImagePrep, source_size
from cnnkit.runtime import Runtime
from cnnkit.tasks.base import SHOWN, EvalContext, Shape, Task, spread
from cnnkit.tasks.localize import write_objects
from cnnkit.tasks.outputs import ImageObjects

SIZE_WEIGHT, OFFSET_WEIGHT = 0.1, 1.0
TOP = 100  # detections kept per image, as COCO counts them
SHOW_SCORE = 0.3  # detections drawn, predicted and counted in F1
MIN_SCORE = 0.05  # detections scored by mAP (Detectron's test threshold: lower ones change mAP by < 0.001)
NMS_IOU = 0.5
GRID_STRIDE = 4  # a detection network's grid cell, in input pixels (the zoo's centernet)


def heatmap_targets(boxes: torch.Tensor, classes: torch.Tensor, num_classes: int,
                    grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training targets of a batch on a ``grid`` (h, w) from boxes ``(B, M, 4)`` in grid units and classes
    ``(B, M)`` (``-1``: none): heatmaps ``(B, K, h, w)``, each object's centre cell ``(B, M, 2)`` (x, y; int64),
    its size ``(B, M, 2)`` and the centre's offset in the cell ``(B, M, 2)``."""
    h, w = grid
    valid = classes >= 0
    centre = torch.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)
    size = torch.stack([boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]], -1)  # (B, M, 2)
    limit = torch.tensor([w - 1, h - 1], device=boxes.device)
    cell = torch.minimum(centre.floor().long().clamp(min=0), limit)  # (B, M, 2)
    sigma = (size / 6).clamp(min=0.5)
    xs = torch.arange(w, device=boxes.device, dtype=boxes.dtype)
    ys = torch.arange(h, device=boxes.device, dtype=boxes.dtype)
    gx = torch.exp(-((xs - cell[..., :1]) ** 2) / (2 * sigma[..., :1] ** 2))  # (B, M, w): 1 at the centre cell
    gy = torch.exp(-((ys - cell[..., 1:]) ** 2) / (2 * sigma[..., 1:] ** 2))  # (B, M, h)
    gauss = gy[..., :, None] * gx[..., None, :] * valid[..., None, None]  # (B, M, h, w)
    # each object's Gaussian into its class's map, the larger value where objects of a class overlap; reduced in
    # place, never as a (B, M, K, h, w) tensor (COCO: 50 objects x 80 classes)
    b = classes.shape[0]
    heat = torch.zeros(b * num_classes, h * w, device=boxes.device, dtype=boxes.dtype)
    target = (torch.arange(b, device=boxes.device)[:, None] * num_classes + classes.clamp(min=0))[valid]  # (V,)
    source = gauss[valid].reshape(-1, h * w).to(heat.dtype)  # (V, h*w)
    heat.scatter_reduce_(0, target[:, None].expand(-1, h * w), source, "amax")
    return heat.view(b, num_classes, h, w), cell, size, centre - cell


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss of heatmap ``logits`` against ``heat`` (both ``(B, K, h, w)``),
    divided by the number of ``objects`` (at least 1)."""
    peak = heat >= 1.0
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    positive = -((1 - p) ** 2) * log_p * peak
    negative = -((1 - heat) ** 4) * p**2 * log_not_p * ~peak
    return (positive.sum() + negative.sum()) / objects.clamp(min=1)


def decode(output: torch.Tensor, stride: tuple[float, float], top: int = TOP, min_score: float = MIN_SCORE,
           iou_threshold: float = NMS_IOU, num_classes: int | None = None) -> list[Detections]:
    """Detections of each image of ``output`` ``(B, K + 4, h, w)``; ``stride`` (x, y) is input pixels per cell.
    ``num_classes`` (K): when the output has more channels after the box's (instance masks)."""
    num_classes = output.shape[1] - 4 if num_classes is None else num_classes
    heat = torch.sigmoid(output[:, :num_classes].float())
    peaks = heat * (heat == F.max_pool2d(heat, 3, 1, 1))  # (B, K, h, w): zero except at local maxima
    b, _, h, w = heat.shape
    scores, index = peaks.flatten(1).topk(min(top, num_classes * h * w), 1)  # (B, T)
    classes, cell = index // (h * w), index % (h * w)
    cy, cx = cell // w, cell % w
    rest = output[:, num_classes:num_classes + 4].float().flatten(2)  # (B, 4, h*w): width, height, offsets
    picked = rest.gather(2, cell[:, None, :].expand(-1, 4, -1))  # (B, 4, T)
    x, y = cx + picked[:, 2], cy + picked[:, 3]
    half_w, half_h = picked[:, 0].clamp(min=0) / 2, picked[:, 1].clamp(min=0) / 2
    sx, sy = stride
    boxes = torch.stack([(x - half_w) * sx, (y - half_h) * sy, (x + half_w) * sx, (y + half_h) * sy], -1)
    found = []
    for i in range(b):
        keep = scores[i] >= min_score
        kept = nms(boxes[i][keep], scores[i][keep], classes[i][keep], iou_threshold)
        found.append(Detections(boxes[i][keep][kept], scores[i][keep][kept], classes[i][keep][kept],
                                cell[i][keep][kept]))
    return found


def f1_scores(found: Sequence[Detections], y: torch.Tensor, size: tuple[float, float]) -> list[float]:
    """Each image's F1 (:func:`~cnnkit.evaluation.detection.image_f1`) of ``found`` against targets ``y``
    ``(B, M, 5)`` (class, box as fractions), their boxes scaled by ``size`` (h, w) to ``found``'s units."""
    h, w = size
    scale = torch.tensor([w, h, w, h], dtype=y.dtype, device=y.device)
    return [image_f1(f, y[i, :, 1:] * scale, y[i, :, 0].long()) for i, f in enumerate(found)]


def write_evaluation(context: EvalContext, files: dict[str, str], reference: dict[str, Any],
                     results: list[dict[str, Any]], images: torch.Tensor, truth: torch.Tensor,
                     drawn: Sequence[Drawn], figure: str, heading: str) -> None:
    """What ``cnnkit evaluate`` writes for detections into ``context.folder``, listed in ``files``: the split's
    objects and the network's in COCO's layouts (``ground_truth.json``, ``detections.json``: pycocotools
    recomputes the scores from them), and ``figure``.png: ``images`` ``(S, C, H, W)`` with their true objects
    ``truth`` ``(S, M, 5)`` (class, box in pixels) dashed and ``drawn`` solid."""
    assert context.folder is not None
    for name, document in (("ground_truth", reference), ("detections", results)):
        atomic_write(context.folder / f"{name}.json", json_text(document, indent=None).encode())
        files[f"coco_{name}"] = str(context.folder / f"{name}.json")
    real = truth[..., 0] >= 0
    path = context.folder / f"{figure}.png"
    boxes_figure(images, [Drawn(t[keep, 1:], t[keep, 0].long()) for t, keep in zip(truth, real, strict=True)],
                 drawn, context.class_names, path, f"{context.title}, {heading} >= {SHOW_SCORE})")
    files[figure] = str(path)


@dataclass
class DetectionResult:
    """``cnnkit evaluate`` of a detection run: ``metrics.json``."""

    split: str
    images: int
    objects: int
    loss: float
    map: float  # COCO box AP, IoU 0.50:0.95
    map50: float
    map75: float
    f1: float  # per-image F1 at score 0.3 and IoU 0.5, averaged
    class_names: list[str]
    per_class_ap: list[float | None]  # AP over IoU 0.50:0.95 of each class (None: no true box of it)
    per_class_ap50: list[float | None]
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"task": "detect", "split": self.split, "images": self.images, "objects": self.objects,
                "loss": self.loss, "map": self.map, "map50": self.map50, "map75": self.map75, "f1": self.f1,
                "f1_score_threshold": SHOW_SCORE, "class_names": self.class_names,
                "per_class_ap": self.per_class_ap, "per_class_ap50": self.per_class_ap50, "files": self.files}


class Detect(Task):
    """Every object of every class, a box and a score each, from a CenterNet-style network."""

    name = "detect"
    metric = "f1"
    zoo_kind = "detection"
    # measured on 2 cores (README): 8 minutes to box mAP 0.65, AP50 0.91 on shapes-det's 2,500 held-out scenes
    defaults: ClassVar[dict[str, Any]] = {"model": "centernet", "data": "shapes-det", "epochs": 10, "batch_size": 32,
                                          "augment": ["flip"], "label_smoothing": 0.0}
    table_hint = (" (a heatmap per class, then width, height and the centre's x and y offsets, on a grid 4 times "
                  "coarser than the image: {n} + 4 maps)")
    output_words = ("K heatmap logits per grid cell (sigmoid: the probability of an object's centre), then the box's "
                    "width and height in cells and the centre's x and y offsets within its cell")
    report_sections = (("detections", "detections", "Detections"),)
    smooths_labels = False
    per_image = False  # mAP pools the detections of the whole split

    extra_channels = 0  # outputs after the box's (instance: the mask head's)

    def classes_of(self, output: torch.Tensor) -> int:
        """K, the classes of an output ``(B, K + 4 + extra, h, w)``."""
        return output.shape[1] - 4 - self.extra_channels

    def decode(self, output: torch.Tensor, stride: tuple[float, float]) -> list[Detections]:
        """Each image's detections in input pixels (:func:`decode`)."""
        return decode(output, stride, num_classes=self.classes_of(output))

    def targets(self, data: ImageDataset) -> torch.Tensor:
        """``(N, M, 5)`` float32: each object's class (``-1``: none), then its box ``(x0, y0, x1, y1)`` in pixels."""
        if data.object_boxes is None or data.object_classes is None:
            raise ValueError(f"--task detect needs every object's box and class (shapes-det, or coco:PATH); "
                             f"{data.name} has only a label per image")
        return torch.cat([data.object_classes[..., None].float(), data.object_boxes.float()], -1)

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x, boxes, _ = transform.apply_boxes(images, targets[..., 1:], None, generator, train)
        h, w = images.shape[-2:]
        gone = ((boxes[..., 2] - boxes[..., 0]) < 1) | ((boxes[..., 3] - boxes[..., 1]) < 1)  # cropped away
        classes = torch.where(gone, -1.0, targets[..., 0])
        scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        return x, torch.cat([classes[..., None], boxes / scale], -1)  # (B, M, 5): class, box as fractions

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        output = output.float()
        num_classes, (h, w) = self.classes_of(output), output.shape[-2:]
        classes = y[..., 0].long()
        grid_boxes = y[..., 1:] * torch.tensor([w, h, w, h], dtype=y.dtype, device=y.device)
        heat, cell, size, offset = heatmap_targets(grid_boxes, classes, num_classes, (h, w))
        valid = (classes >= 0).float()  # (B, M)
        objects = valid.sum()
        index = (cell[..., 1] * w + cell[..., 0])[:, None, :].expand(-1, 4, -1)  # (B, 4, M)
        picked = output[:, num_classes:num_classes + 4].flatten(2).gather(2, index).transpose(1, 2)  # (B, M, 4)
        size_loss = ((picked[..., :2] - size).abs().sum(-1) * valid).sum() / objects.clamp(min=1)
        offset_loss = ((picked[..., 2:] - offset).abs().sum(-1) * valid).sum() / objects.clamp(min=1)
        return focal_loss(output[:, :num_classes], heat, objects) + SIZE_WEIGHT * size_loss + \
            OFFSET_WEIGHT * offset_loss

    def _f1(self, output: torch.Tensor, y: torch.Tensor) -> list[float]:
        h, w = output.shape[-2:]
        return f1_scores(self.decode(output, (1.0 / w, 1.0 / h)), y, (1, 1))  # boxes as fractions, like y's

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return sum(self._f1(output, y))

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        if transform is None:
            raise ValueError(f"--task {self.name} evaluates images, not precomputed inputs: give a BatchTransform")
        loss, found, f1, num_classes = self._run(model, images, targets, transform, runtime, seed)
        h, w = images.shape[-2:]
        scores = coco_map(targets[..., 1:].cpu(), targets[..., 0].long().cpu(), found, num_classes, (h, w))
        return {"loss": loss, "f1": f1, "map": scores.map, "map50": scores.map50}

    def _run(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
             runtime: Runtime, seed: int) -> tuple[float, list[Detections], float, int]:
        """Loss, each image's detections (pixels), the mean per-image F1 of ``model`` on held-out images, and the
        number of classes it detects."""
        total, found, f1, num_classes = 0.0, [], 0.0, 0
        h, w = images.shape[-2:]
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            num_classes = self.classes_of(output)
            detections = self.decode(output, (w / output.shape[-1], h / output.shape[-2]))  # once, in pixels
            f1 += sum(f1_scores(detections, y, (h, w)))
            found += [Detections(d.boxes.cpu(), d.scores.cpu(), d.classes.cpu()) for d in detections]
        return total / len(images), found, f1 / len(images), num_classes

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        return (num_classes + 4, input_shape[1] // GRID_STRIDE, input_shape[2] // GRID_STRIDE)

    def describe(self, num_classes: int) -> str:
        return f"{num_classes} classes of objects"

    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> DetectionResult:
        targets = self.targets(data).to(runtime.device)
        loss, found, f1, _ = self._run(model, data.images.to(runtime.device), targets, transform, runtime,
                                       context.seed)
        truth = targets.cpu()
        names = context.class_names
        h, w = data.images.shape[-2:]
        reference, results = coco_documents(truth[..., 1:], truth[..., 0].long(), found, names, (h, w), data.files)
        scores = evaluate_documents(reference, results)
        result = DetectionResult(context.split, len(data), int((truth[..., 0] >= 0).sum()), round(loss, 4),
                                 round(scores.map, 4), round(scores.map50, 4), round(scores.map75, 4), round(f1, 4),
                                 names, [None if v is None else round(v, 4) for v in scores.per_class_ap],
                                 [None if v is None else round(v, 4) for v in scores.per_class_ap50])
        if context.folder is not None:
            shown = spread(len(data), SHOWN)
            drawn = [Drawn(f.boxes[f.scores >= SHOW_SCORE], f.classes[f.scores >= SHOW_SCORE],
                           f.scores[f.scores >= SHOW_SCORE]) for f in (found[i] for i in shown)]
            write_evaluation(context, result.files, reference, results, data.images[shown], truth[shown], drawn,
                             "detections", f"mAP {result.map:.3f}, AP50 {result.map50:.3f}; boxes scoring")
        return result

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> ImageObjects:
        """``NAME.boxes.png``: the image file with the boxes scoring at least 0.3, labelled; each such object in the
        JSON, its box in the file's own pixels."""
        h, w = x.shape[-2:]
        found = self.decode(output[None], (w / output.shape[-1], h / output.shape[-2]))[0]
        keep = found.scores >= SHOW_SCORE
        boxes = prep.to_source(found.boxes[keep], source_size(file))
        return write_objects(file, boxes, found.scores[keep], found.classes[keep], class_names, target)
