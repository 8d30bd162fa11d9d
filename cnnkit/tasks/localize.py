"""Classification + localisation (deck 001): one class and one box per image.

Any classification network becomes a localiser by giving it ``K + 4`` outputs:
``K`` class scores and four box numbers. The box is read as centre and size on
[0, 1] of the image, ``(cx, cy, w, h) = sigmoid(raw)``, so every output is a
valid box inside the image. The loss adds to the class cross-entropy the L1
distance of the box's corners (as fractions of the image, weight 1) and the
GIoU loss (:mod:`cnnkit.evaluation.boxes`, weight 2), the usual pair since DETR.
The weights are the ones that train the class and the box together best on
shapes-loc: with L1 at DETR's 5, the box takes over the shared features and
the class lags (fastnet, 8 epochs: 77.7% of classes right instead of 98.2%).

Scores: accuracy (the class), mean IoU of the box with the true one, and the
*localisation accuracy* of ILSVRC: the class right **and** IoU >= 0.5, the
training metric. Boxes move with crops and flips.
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
from cnnkit.evaluation.box_figures import Drawn, boxes_figure, overlay_file
from cnnkit.evaluation.boxes import giou_loss, paired_iou
from cnnkit.images import ImagePrep, source_size
from cnnkit.runtime import Runtime
from cnnkit.tasks.base import SHOWN, EvalContext, Shape, Task, spread
from cnnkit.tasks.outputs import ImageObjects

BOX_L1_WEIGHT = 1.0
GIOU_WEIGHT = 2.0
IOU_HIT = 0.5  # ILSVRC: a box is right when its IoU with the true box is at least this


def decode_boxes(raw: torch.Tensor) -> torch.Tensor:
    """The network's four box outputs ``(..., 4)`` -> corners ``(x0, y0, x1, y1)`` as fractions of the image."""
    cx, cy, w, h = torch.sigmoid(raw.float()).unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


@dataclass
class LocalizationResult:
    """``cnnkit evaluate`` of a localisation run: ``metrics.json``."""

    split: str
    images: int
    loss: float
    accuracy: float  # the class right
    mean_iou: float  # of the predicted box with the true one, over the images
    box_accuracy: float  # IoU >= 0.5, whatever the class
    localization_accuracy: float  # the class right and IoU >= 0.5 (ILSVRC localisation)
    class_names: list[str]
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"task": "localize", "split": self.split, "images": self.images, "loss": self.loss,
                "accuracy": self.accuracy, "mean_iou": self.mean_iou, "box_accuracy": self.box_accuracy,
                "localization_accuracy": self.localization_accuracy, "iou_threshold": IOU_HIT, "class_names": self.class_names,
                "files": self.files}


class Localize(Task):
    """One class and one box per image, from ``K + 4`` outputs of any classification network."""

    name = "localize"
    metric = "localization_accuracy"
    zoo_kind = "classification"
    defaults: ClassVar[dict[str, Any]] = {"model": "fastnet", "data": "shapes-loc", "epochs": 20,
                                          "label_smoothing": 0.0}
    table_hint = "; its last dense layer needs {n} + 4 units (the class scores, then the box)"
    output_words = ("K class scores (logits), then 4 box numbers: sigmoid gives the box's centre x, y and width, "
                    "height as fractions of the image")
    report_sections = (("localization", "localization", "Predicted boxes"),
                       ("localization_mistakes", "localization-mistakes", "The worst boxes"))
    smooths_labels = False

    def targets(self, data: ImageDataset) -> torch.Tensor:
        """``(N, 5)`` float32: the class, then the box ``(x0, y0, x1, y1)`` in pixels."""
        boxes = data.boxes
        if boxes is None and data.object_boxes is not None and data.object_classes is not None:
            counts = (data.object_classes >= 0).sum(1)
            if not bool((counts == 1).all()):
                many = int((counts != 1).sum())
                raise ValueError(f"--task localize needs exactly one object per image; {data.name} has {many} image(s) "
                                 f"with {int(counts.min())} to {int(counts.max())} objects: use --task detect")
            boxes = data.object_boxes[torch.arange(len(data)), (data.object_classes >= 0).int().argmax(1)]
        if boxes is None:
            raise ValueError(f"--task localize needs a box per image (shapes-loc, shapes, or coco:PATH with one object "
                             f"per image); {data.name} has only a label per image")
        return torch.cat([data.labels[:, None].float(), boxes.float()], 1)

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x, boxes, _ = transform.apply_boxes(images, targets[:, None, 1:], None, generator, train)
        h, w = images.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        return x, torch.cat([targets[:, :1], boxes[:, 0] / scale], 1)  # (B, 5): class, box as fractions

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        output = output.float()
        logits, box = output[:, :-4], decode_boxes(output[:, -4:])
        labels, truth = y[:, 0].long(), y[:, 1:]
        return (F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
                + BOX_L1_WEIGHT * (box - truth).abs().sum(1).mean() + GIOU_WEIGHT * giou_loss(box, truth).mean())

    def _hits(self, output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: whether the class is right, and the IoU of the box."""
        return output[:, :-4].argmax(1) == y[:, 0].long(), paired_iou(decode_boxes(output[:, -4:]), y[:, 1:])

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        right, iou = self._hits(output, y)
        return int((right & (iou >= IOU_HIT)).sum())

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        if transform is None:
            raise ValueError(f"--task {self.name} evaluates images, not precomputed inputs: give a BatchTransform")
        total, right, ious = 0.0, [], []
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            hit, iou = self._hits(output, y)
            right.append(hit)
            ious.append(iou)
        hits, overlap = torch.cat(right), torch.cat(ious)
        return {"loss": total / len(images), "localization_accuracy": float((hits & (overlap >= IOU_HIT)).float().mean()),
                "accuracy": float(hits.float().mean()), "mean_iou": float(overlap.mean())}

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        return (num_classes + 4,)

    def zoo_classes(self, num_classes: int) -> int:
        return num_classes + 4

    def describe(self, num_classes: int) -> str:
        return f"{num_classes} classes and a box"

    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> LocalizationResult:
        targets = self.targets(data).to(runtime.device)
        images = data.images.to(runtime.device)
        total, outputs = 0.0, []
        for _, y, output in self.predict(model, images, targets, transform, runtime, context.seed):
            total += float(self.loss(output, y)) * len(y)
            outputs.append(output.cpu())
        output = torch.cat(outputs)
        h, w = data.images.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        truth = targets.cpu()
        right, iou = self._hits(output, torch.cat([truth[:, :1], truth[:, 1:] / scale], 1))
        result = LocalizationResult(context.split, len(data), round(total / len(data), 4),
                                    round(float(right.float().mean()), 4), round(float(iou.mean()), 4),
                                    round(float((iou >= IOU_HIT).float().mean()), 4),
                                    round(float((right & (iou >= IOU_HIT)).float().mean()), 4), context.class_names)
        if context.folder is None:
            return result
        boxes = decode_boxes(output[:, -4:]) * scale  # (N, 4) pixels
        probs = output[:, :-4].softmax(1)
        score, predicted = probs.max(1)
        worst = iou.argsort()[:SHOWN].tolist()
        for name, indices, heading in (
                ("localization", spread(len(data), SHOWN), f"{context.title}, localisation accuracy "
                                                           f"{result.localization_accuracy:.2%})"),
                ("localization_mistakes", worst, f"{context.title}: the {len(worst)} boxes of least IoU)")):
            boxes_figure(data.images[indices],
                         [Drawn(truth[i:i + 1, 1:], truth[i:i + 1, 0].long()) for i in indices],
                         [Drawn(boxes[i:i + 1], predicted[i:i + 1], score[i:i + 1]) for i in indices],
                         context.class_names, context.folder / f"{name}.png", heading,
                         [f"IoU {float(iou[i]):.2f}" for i in indices])
            result.files[name] = str(context.folder / f"{name}.png")
        return result

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> ImageObjects:
        """``NAME.boxes.png``: the image file with the box and its class drawn; the box in the file's own pixels."""
        h, w = x.shape[-2:]
        box = prep.to_source(decode_boxes(output[-4:]) * torch.tensor([w, h, w, h], dtype=torch.float32),
                             source_size(file))
        score, c = output[:-4].float().softmax(0).max(0)
        return write_objects(file, box[None], score[None], c[None], class_names, target)


def write_objects(file: str, boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
                  class_names: Sequence[str], target: Path) -> ImageObjects:
    """What predict says of one image's objects (``boxes`` ``(M, 4)`` in the file's pixels): ``target.boxes.png``,
    the file with each box labelled, and the objects, best first."""
    labels = [f"{class_names[int(c)]} {float(s):.2f}" for s, c in zip(scores, classes, strict=True)]
    path = overlay_file(file, boxes, labels, classes, len(class_names), target.with_name(f"{target.name}.boxes.png"))
    objects = tuple((int(c), class_names[int(c)], float(s), tuple(round(float(v), 2) for v in b))
                    for b, s, c in zip(boxes, scores, classes, strict=True))
    return ImageObjects(file, {"boxes": str(path)}, objects)
