"""Instance segmentation (deck 001: a mask for each object): CenterNet + CondInst's dynamic mask head.

The network (zoo ``centernet_masks``) outputs :mod:`cnnkit.tasks.detect`'s
heatmaps and boxes and, per grid cell, the 97 weights of a small mask head for
the object centred there, plus 8 channels of mask features shared by every
object (CondInst, Tian, Shen and Chen 2020: a *dynamic* mask head, chosen over
Mask R-CNN's RoIAlign because it needs no crop-and-resize step: every mask
comes from the same features at the image's own resolution, which suits small
objects). An object's mask is that head run at every pixel on the mask
features (bilinearly upsampled from the grid to the image) and the pixel's
position relative to the box centre (in units of a quarter of the image)::

    (8 features + 2 coordinates) -1x1-> 8, ReLU -1x1-> 1 logit per pixel; sigmoid >= 0.5: the mask

Targets: each object's mask; its class and box follow from the mask (the box
is the mask's extent, as in shapes-det), so they move with every crop and flip.
Loss: detect's, plus per object the pixels' binary cross-entropy and the Dice
loss of its mask, its head taken at its true centre cell.

Scores (pycocotools): box mAP and mask mAP (RLE masks, ``iouType="segm"``),
each over IoU 0.50:0.95 with AP50 and AP75; the training metric is detect's F1.
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
from cnnkit.evaluation.box_figures import Drawn, overlay_file
from cnnkit.evaluation.detection import Detections, coco_documents, evaluate_documents, rle
from cnnkit.fileio import atomic_write
from cnnkit.images import ImagePrep, png_bytes, source_size
from cnnkit.models.centernet import MASK_FEATURES, MASK_HIDDEN, MASK_PARAMS
from cnnkit.runtime import Runtime
from cnnkit.tasks.base import SHOWN, EvalContext, Shape, spread
from cnnkit.tasks.detect import GRID_STRIDE, SHOW_SCORE, Detect, f1_scores, write_evaluation
from cnnkit.tasks.outputs import ImageObjects

MASK_WEIGHT = 1.0


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """The tight boxes ``(..., 4)`` ``(x0, y0, x1, y1)`` (pixel edges) of masks ``(..., H, W)`` bool; an empty
    mask's box is zeros.

    >>> m = torch.zeros(1, 5, 6, dtype=torch.bool); m[0, 1:3, 2:5] = True
    >>> mask_boxes(m).tolist()
    [[2.0, 1.0, 5.0, 3.0]]
    """
    rows, cols = masks.any(-1), masks.any(-2)  # (..., H), (..., W)
    h, w = masks.shape[-2:]
    y0 = rows.float().argmax(-1)
    y1 = h - rows.flip(-1).float().argmax(-1)
    x0 = cols.float().argmax(-1)
    x1 = w - cols.flip(-1).float().argmax(-1)
    boxes = torch.stack([x0, y0, x1, y1], -1).float()
    return boxes * rows.any(-1, keepdim=True)


def dynamic_masks(params: torch.Tensor, features: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mask logits ``(D, H, W)`` of ``D`` objects from their heads' weights ``params`` ``(D, 97)``, the mask
    features they read ``(D, 8, H, W)`` (at the image's resolution) and their centres ``(D, 2)`` (x, y pixels)."""
    with torch.autocast(features.device.type, enabled=False):  # fp32 in training (under autocast) as in predict
        return _dynamic_masks(params.float(), features.float(), centres.float())


def _dynamic_masks(params: torch.Tensor, features: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    d, _, h, w = features.shape
    scale = max(h, w) / 4
    xs = (torch.arange(w, device=features.device, dtype=features.dtype) + 0.5)[None, :] - centres[:, :1]
    ys = (torch.arange(h, device=features.device, dtype=features.dtype) + 0.5)[None, :] - centres[:, 1:]
    coords = torch.stack([(xs / scale)[:, None, :].expand(d, h, w), (ys / scale)[:, :, None].expand(d, h, w)], 1)
    inputs = torch.cat([features, coords], 1)  # (D, F + 2, H, W)
    c, hidden = MASK_FEATURES + 2, MASK_HIDDEN
    w1 = params[:, :c * hidden].reshape(d, hidden, c)
    b1 = params[:, c * hidden:c * hidden + hidden]
    w2 = params[:, c * hidden + hidden:c * hidden + 2 * hidden]
    b2 = params[:, -1]
    middle = F.relu(torch.einsum("doc,dchw->dohw", w1, inputs) + b1[..., None, None])
    return torch.einsum("do,dohw->dhw", w2, middle) + b2[:, None, None]


def _split(output: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An instance network's output -> its mask heads' weights ``(B, 97, h, w)`` and its mask features upsampled
    to the input ``(B, 8, 4h, 4w)`` (the grid is :data:`~cnnkit.tasks.detect.GRID_STRIDE` times coarser)."""
    start = num_classes + 4
    params = output[:, start:start + MASK_PARAMS]
    features = output[:, start + MASK_PARAMS:start + MASK_PARAMS + MASK_FEATURES]
    h, w = output.shape[-2:]
    return params, F.interpolate(features, size=(h * GRID_STRIDE, w * GRID_STRIDE), mode="bilinear",
                                 align_corners=False)


@dataclass
class InstanceResult:
    """``cnnkit evaluate`` of an instance segmentation run: ``metrics.json``."""

    split: str
    images: int
    objects: int
    loss: float
    box_map: float
    box_map50: float
    box_map75: float
    mask_map: float
    mask_map50: float
    mask_map75: float
    f1: float
    class_names: list[str]
    per_class_mask_ap: list[float | None]
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"task": "instance", "split": self.split, "images": self.images, "objects": self.objects,
                "loss": self.loss, "box_map": self.box_map, "box_map50": self.box_map50,
                "box_map75": self.box_map75, "mask_map": self.mask_map, "mask_map50": self.mask_map50,
                "mask_map75": self.mask_map75, "f1": self.f1, "f1_score_threshold": SHOW_SCORE,
                "class_names": self.class_names, "per_class_mask_ap": self.per_class_mask_ap, "files": self.files}


class Instance(Detect):
    """Every object of every class: a box, a score and a mask each."""

    name = "instance"
    zoo_kind = "instance"
    defaults: ClassVar[dict[str, Any]] = {**Detect.defaults, "model": "centernet_masks"}
    table_hint = (" (detect's {n} + 4 maps, then 97 mask-head weights and 8 mask features per cell: {n} + 109 "
                  "maps on a grid 4 times coarser than the image)")
    output_words = (Detect.output_words + "; then the 97 weights of the mask head of the object centred at the "
                    "cell, and 8 channels of mask features (cnnkit.tasks.instance.dynamic_masks decodes them)")
    report_sections = (("instances", "instances", "Instances"),)
    extra_channels = MASK_PARAMS + MASK_FEATURES

    def targets(self, data: ImageDataset) -> torch.Tensor:
        """``(N, M, H, W)`` uint8: each object's mask, holding its class + 1 (0: not the object)."""
        self.check(data)
        assert data.object_masks is not None and data.object_classes is not None
        masks = data.object_masks
        code = (data.object_classes + 1).clamp(min=0).to(torch.uint8)  # (N, M)

        def coded(start: int, stop: int) -> torch.Tensor:
            return masks[start:stop].to(torch.uint8) * code[start:stop, :, None, None]

        if data.mapped is None:
            return coded(0, len(data))
        from cnnkit.data.packed import spill  # a mapped pack's masks: the targets made on disk beside it, not in memory

        return spill(len(data), tuple(masks.shape[1:]), torch.uint8, coded, Path(data.mapped).parent, "instance targets")

    def check(self, data: ImageDataset) -> None:
        if data.object_masks is None or data.object_classes is None:
            raise ValueError(f"--task instance needs every object's mask and class (shapes-det, or coco:PATH with "
                             f"segmentations); {data.name} has none")

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        none = torch.zeros(*targets.shape[:2], 4, device=targets.device)
        x, _, masks = transform.apply_boxes(images, none, targets, generator, train)
        assert masks is not None
        return x, masks  # the masks moved with the pixels: classes and boxes are read from them

    def _detection_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Masks ``(B, M, H, W)`` (class + 1) -> detect's targets ``(B, M, 5)``: class, box as fractions."""
        h, w = y.shape[-2:]
        classes = y.flatten(2).amax(-1).long() - 1  # (B, M); -1: no object (or one cropped away)
        boxes = mask_boxes(y > 0) / torch.tensor([w, h, w, h], dtype=torch.float32, device=y.device)
        return torch.cat([classes[..., None].float(), boxes], -1)

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        output = output.float()
        num_classes = self.classes_of(output)
        boxes = self._detection_targets(y)
        detection = super().loss(output, boxes)
        valid = boxes[..., 0] >= 0  # (B, M)
        if not bool(valid.any()):
            return detection
        h, w = output.shape[-2:]
        size = torch.tensor([y.shape[-1], y.shape[-2]] * 2, dtype=torch.float32, device=y.device)
        pixels = boxes[..., 1:] * size  # (B, M, 4)
        centres = torch.stack([(pixels[..., 0] + pixels[..., 2]) / 2, (pixels[..., 1] + pixels[..., 3]) / 2], -1)
        cells = (centres / GRID_STRIDE).floor().long()
        cells[..., 0].clamp_(0, w - 1)
        cells[..., 1].clamp_(0, h - 1)
        params, features = _split(output, num_classes)
        image, slot = valid.nonzero(as_tuple=True)
        cx, cy = cells[image, slot, 0], cells[image, slot, 1]
        logits = dynamic_masks(params[image, :, cy, cx], features[image], centres[image, slot])
        truth = (y[image, slot] > 0).float()
        bce = F.binary_cross_entropy_with_logits(logits, truth)
        p = torch.sigmoid(logits).flatten(1)
        dice = 1 - (2 * (p * truth.flatten(1)).sum(1) + 1) / (p.sum(1) + truth.flatten(1).sum(1) + 1)
        return detection + MASK_WEIGHT * (bce + dice.mean())

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return super().score(output, self._detection_targets(y))

    def masks(self, output: torch.Tensor, found: Sequence[Detections]) -> list[torch.Tensor]:
        """Each image's detections' masks ``(D, H, W)`` bool, from ``output`` ``(B, C, h, w)`` (input pixels)."""
        params, features = _split(output.float(), self.classes_of(output))
        w = output.shape[-1]
        out = []
        for i, detections in enumerate(found):
            assert detections.cells is not None
            cells = detections.cells.to(output.device)
            centres = torch.stack([(detections.boxes[:, 0] + detections.boxes[:, 2]) / 2,
                                   (detections.boxes[:, 1] + detections.boxes[:, 3]) / 2], -1).to(output.device)
            logits = dynamic_masks(params[i, :, cells // w, cells % w].T, features[i].expand(len(cells), -1, -1, -1),
                                   centres)
            out.append((logits >= 0).cpu())  # sigmoid >= 0.5
        return out

    def _run_instances(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                       transform: BatchTransform, runtime: Runtime,
                       seed: int) -> tuple[float, list[Detections], float, int]:
        """Loss, each image's detections (pixels, masks as RLE ``shapes``), the mean per-image F1 and the number of
        classes the network detects."""
        total, found, f1, num_classes = 0.0, [], 0.0, 0
        h, w = images.shape[-2:]
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            num_classes = self.classes_of(output)
            detections = self.decode(output, (w / output.shape[-1], h / output.shape[-2]))  # once, in pixels
            f1 += sum(f1_scores(detections, self._detection_targets(y), (h, w)))
            for d, masks in zip(detections, self.masks(output, detections), strict=True):
                found.append(Detections(d.boxes.cpu(), d.scores.cpu(), d.classes.cpu(), d.cells,
                                        rle(masks.numpy())))
        return total / len(images), found, f1 / len(images), num_classes

    def _scores(self, targets: torch.Tensor, found: list[Detections], class_names: Sequence[str],
                files: Sequence[str] | None = None) -> tuple[Any, Any, dict[str, Any], list[dict[str, Any]]]:
        """Box and mask mAP of ``found`` against the class-coded masks ``targets``, and the COCO documents."""
        truth = self._detection_targets(targets.cpu())
        h, w = targets.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        reference, results = coco_documents(truth[..., 1:] * scale, truth[..., 0].long(), found, class_names, (h, w),
                                            files, targets.cpu() > 0)
        return (evaluate_documents(reference, results, "bbox"), evaluate_documents(reference, results, "segm"),
                reference, results)

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        if transform is None:
            raise ValueError(f"--task {self.name} evaluates images, not precomputed inputs: give a BatchTransform")
        loss, found, f1, num_classes = self._run_instances(model, images, targets, transform, runtime, seed)
        boxes, masks, _, _ = self._scores(targets, found, [str(k) for k in range(num_classes)])
        return {"loss": loss, "f1": f1, "box_map": boxes.map, "mask_map": masks.map, "mask_map50": masks.map50}

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        k, h, w = super().output_shape(input_shape, num_classes)
        return (k + self.extra_channels, h, w)

    def describe(self, num_classes: int) -> str:
        return f"{num_classes} classes of objects, with masks"

    def evaluate_split(  # type: ignore[override]  # a Result, as Task.evaluate_split says; not a DetectionResult
            self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
            context: EvalContext) -> InstanceResult:
        targets = self.targets(data).to(runtime.device)
        loss, found, f1, _ = self._run_instances(model, data.images.to(runtime.device), targets, transform,
                                                 runtime, context.seed)
        names = context.class_names
        boxes, masks, reference, results = self._scores(targets, found, names, data.files)
        result = InstanceResult(context.split, len(data), len(reference["annotations"]), round(loss, 4),
                                round(boxes.map, 4), round(boxes.map50, 4), round(boxes.map75, 4),
                                round(masks.map, 4), round(masks.map50, 4), round(masks.map75, 4), round(f1, 4),
                                names, [None if v is None else round(v, 4) for v in masks.per_class_ap])
        if context.folder is None:
            return result
        from pycocotools import mask as coco_mask

        shown = spread(len(data), SHOWN)
        h, w = data.images.shape[-2:]
        truth = self._detection_targets(targets[shown].cpu())
        truth[..., 1:] *= torch.tensor([w, h, w, h], dtype=torch.float32)  # fractions -> pixels
        drawn = []
        for i in shown:
            strong = found[i].scores >= SHOW_SCORE
            shapes = [s for s, keep in zip(found[i].shapes or [], strong.tolist(), strict=True) if keep]
            masks_i = (torch.from_numpy(coco_mask.decode(shapes)).permute(2, 0, 1).bool() if shapes
                       else torch.zeros(0, h, w, dtype=torch.bool))
            drawn.append(Drawn(found[i].boxes[strong], found[i].classes[strong], found[i].scores[strong], masks_i))
        write_evaluation(context, result.files, reference, results, data.images[shown], truth, drawn, "instances",
                         f"mask mAP {result.mask_map:.3f}, box mAP {result.box_map:.3f}; objects scoring")
        return result

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> ImageObjects:
        """``NAME.boxes.png`` (the image with each object's mask and labelled box) and ``NAME.mask<k>.png`` per
        object scoring at least 0.3, each in the image file's own pixels."""
        h, w = x.shape[-2:]
        found = self.decode(output[None], (w / output.shape[-1], h / output.shape[-2]))[0]
        keep = found.scores >= SHOW_SCORE
        strong = Detections(found.boxes[keep], found.scores[keep], found.classes[keep],
                            None if found.cells is None else found.cells[keep])
        source = source_size(file)
        masks = [prep.mask_to_source(m, source) for m in self.masks(output[None], [strong])[0]]
        boxes = prep.to_source(strong.boxes, source)
        labels = [f"{class_names[int(c)]} {float(s):.2f}" for s, c in zip(strong.scores, strong.classes, strict=True)]
        outputs = {"boxes": str(overlay_file(file, boxes, labels, strong.classes, len(class_names),
                                             target.with_name(f"{target.name}.boxes.png"), masks))}
        for k, mask in enumerate(masks):
            path = target.with_name(f"{target.name}.mask{k}.png")
            atomic_write(path, png_bytes(mask.astype("uint8") * 255))
            outputs[f"mask{k}"] = str(path)
        objects = tuple((int(c), class_names[int(c)], float(s), tuple(round(float(v), 2) for v in b))
                        for b, s, c in zip(boxes, strong.scores, strong.classes, strict=True))
        return ImageObjects(file, outputs, objects, masks=tuple(outputs[f"mask{k}"] for k in range(len(masks))))

