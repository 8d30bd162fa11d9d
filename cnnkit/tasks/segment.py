"""Semantic segmentation: a class for every pixel (cross-entropy + Dice; pixel accuracy, IoU, Dice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset
from cnnkit.evaluation import measures
from cnnkit.evaluation.dense import SegmentationResult
from cnnkit.evaluation.dense_figures import class_colours, segmentation_figure
from cnnkit.evaluation.figures import confusion_figure
from cnnkit.images import ImagePrep, write_tensor_png
from cnnkit.runtime import Runtime
from cnnkit.tasks.base import SHOWN, EvalContext, Shape, Task, spread
from cnnkit.tasks.outputs import ImageOutput


class Segment(Task):
    """A class for every pixel; masks move with their images under crops and flips."""

    name = "segment"
    metric = "pixel_accuracy"
    zoo_kind = "segmentation"
    defaults: ClassVar[dict[str, Any]] = {"model": "unet", "model_options": ["width=16"], "data": "shapes-seg", "epochs": 8, "batch_size": 16,
                "label_smoothing": 0.0}  # mean IoU 0.87 on shapes-seg in 8 epochs, about 3 minutes of one CPU core
    table_hint = " (a score map per class at the image's size); end it in `conv {n} 1x1` with padded convolutions"
    output_words = "a score map per class; the argmax over the classes is each pixel's class"
    report_sections = (("segmentation", "segmentation", "Predicted masks"),
                       ("segmentation_mistakes", "segmentation-mistakes", "The images with the most wrong pixels"),
                       ("confusion_matrix", "confusion", "Confusion matrix of pixels"))
    per_image = False  # mean IoU pools the pixel confusion matrix of the whole split

    def targets(self, data: ImageDataset) -> torch.Tensor:
        if data.segmentation is None:
            raise ValueError(f"--task segment needs a dataset with a class per pixel (shapes-seg, or folder:PATH with "
                             f"images/ and masks/); {data.name} has only a label per image")
        return data.segmentation

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x, masks = transform.apply(images, targets, generator, train)
        assert masks is not None  # apply returns the masks it was given
        return x, masks.long()  # (B, C, H, W) float, (B, H, W) int64

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        logits = output.float()  # (B, K, H, W)
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing) + measures.dice_loss(logits, y)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return float((output.argmax(1) == y).float().mean((1, 2)).sum())  # each image's pixel accuracy, summed

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        if transform is None:
            raise ValueError(f"--task {self.name} evaluates images, not precomputed inputs: give a BatchTransform")
        total, matrix = 0.0, np.zeros((0, 0), dtype=np.int64)
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            counts = measures.confusion(output.argmax(1), y, output.shape[1])
            matrix = counts if matrix.size == 0 else matrix + counts
        scores = measures.segmentation_scores(matrix)
        return {"loss": total / len(images), "pixel_accuracy": scores.pixel_accuracy, "mean_iou": scores.mean_iou}

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        return (num_classes, *input_shape[1:])

    def describe(self, num_classes: int) -> str:
        return f"{num_classes} classes"

    def scores(self, model: nn.Module, images: torch.Tensor, masks: torch.Tensor, transform: BatchTransform,
               runtime: Runtime, class_names: list[str], split: str,
               seed: int = 0) -> tuple[SegmentationResult, torch.Tensor]:
        """Scores of ``model`` on uint8 ``images`` ``(N, C, H, W)`` with true ``masks`` ``(N, H, W)``,
        and its predicted class maps ``(N, H, W) uint8`` (for the figures)."""
        total, matrix, predicted = 0.0, np.zeros((len(class_names),) * 2, dtype=np.int64), []
        for _, y, output in self.predict(model, images, masks, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            classes = output.argmax(1)  # (B, H, W)
            matrix += measures.confusion(classes, y, len(class_names))
            predicted.append(classes.to(torch.uint8).cpu())
        scores = measures.segmentation_scores(matrix)
        result = SegmentationResult(split, len(images), round(total / len(images), 4), round(scores.pixel_accuracy, 4),
                                    round(scores.mean_iou, 4), round(scores.dice, 4), list(class_names),
                                    [None if v is None else round(v, 4) for v in scores.per_class_iou],
                                    [None if v is None else round(v, 4) for v in scores.per_class_dice],
                                    matrix.tolist())
        return result, torch.cat(predicted)

    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> SegmentationResult:
        images, masks = data.images.to(runtime.device), self.targets(data).to(runtime.device)
        names = context.class_names
        result, predicted = self.scores(model, images, masks, transform, runtime, names, context.split, context.seed)
        if context.folder is None:
            return result
        images, masks = images.cpu(), masks.cpu()
        accuracy = (predicted == masks).float().mean((1, 2))  # (N,) each image's pixel accuracy
        worst = accuracy.argsort()[:SHOWN].tolist()
        figures = {"segmentation": (spread(len(images), SHOWN), f"{context.title}, mean IoU {result.mean_iou:.3f})"),
                   "segmentation_mistakes": (worst, f"{context.title}: the {len(worst)} images with the most wrong "
                                                    f"pixels)")}
        for name, (indices, heading) in figures.items():
            segmentation_figure(images, masks, predicted, indices, names, context.folder / f"{name}.png", heading)
            result.files[name] = str(context.folder / f"{name}.png")
        confusion_figure(result.confusion_matrix, names, context.folder / "confusion_matrix.png",
                         f"{context.title}, pixels, pixel accuracy {result.pixel_accuracy:.2%})")
        result.files["confusion_matrix"] = str(context.folder / "confusion_matrix.png")
        return result

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> ImageOutput:
        """``NAME.mask.png`` (a class id per pixel, as ``folder:PATH`` masks) and ``NAME.overlay.png`` (the
        classes coloured over the input ``x``), from the ``(K, H, W)`` scores ``output``."""
        classes = output.argmax(0).to(torch.uint8)  # (H, W)
        mask_path = target.with_name(f"{target.name}.mask.png")
        overlay_path = target.with_name(f"{target.name}.overlay.png")
        write_tensor_png(mask_path, classes)
        picture = torch.from_numpy(prep.show(x)).float()  # the image as the network saw it, on [0, 1]
        picture = picture.permute(2, 0, 1) if picture.dim() == 3 else picture.expand(3, -1, -1)  # (3, H, W)
        colours = torch.from_numpy(class_colours(len(class_names))).float()[classes.long()].permute(2, 0, 1)
        alpha = 0.65 * colours[3:]  # (1, H, W)
        blended = picture * (1 - alpha) + colours[:3] * alpha
        write_tensor_png(overlay_path, blended.mul(255).round().to(torch.uint8))
        counts = torch.bincount(classes.flatten().long(), minlength=len(class_names))
        share = [(int(c), class_names[int(c)], float(counts[c]) / classes.numel())
                 for c in counts.argsort(descending=True) if counts[c] > 0]
        return ImageOutput(file, {"mask": str(mask_path), "overlay": str(overlay_path)}, tuple(share))
