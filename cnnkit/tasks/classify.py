"""Classification: images in, one class per image out (cross-entropy; accuracy, per-class scores, confusion)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset, batches
from cnnkit.evaluation.figures import confusion_figure, mistakes_figure
from cnnkit.evaluation.metrics import EvaluationResult, classification_metrics
from cnnkit.images import ImagePrep, input_from_file
from cnnkit.progress import Ticker
from cnnkit.runtime import Runtime
from cnnkit.tasks.base import EvalContext, Prediction, Shape, Task, layout
from cnnkit.tasks.outputs import ClassScore, ImagePrediction
from cnnkit.timing import phase


def evaluate_batches(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, transform: BatchTransform | None,
                     runtime: Runtime, batch_size: int = 512, tta: bool = False) -> tuple[float, float, torch.Tensor]:
    """Mean cross-entropy, accuracy and the ``(N, classes)`` float32 logits of ``model`` on uint8 ``images``.

    ``transform=None``: ``images`` are the network's inputs already (features ``(N, F)``).
    ``tta`` (test-time augmentation) averages the logits of each image and of its mirror image.
    """
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad(), runtime.autocast(), Ticker("evaluating", images.shape[0], "images") as ticker:
        for x, _ in batches((images, labels), batch_size):
            count = x.shape[0]
            x = layout(x if transform is None else transform(x, train=False), runtime)
            logits = model(x).float()
            outputs.append(0.5 * (logits + model(x.flip(-1)).float()) if tta else logits)
            ticker.advance(count)
    model.train(was_training)
    logits = torch.cat(outputs)
    loss = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return loss, accuracy, logits


def classify_files(model: nn.Module, prep: ImagePrep, files: Sequence[str | Path], class_names: Sequence[str],
                   top: int = 5, batch_size: int = 16) -> list[ImagePrediction]:
    """Top-``top`` classes of each file under ``model`` (which expects images as ``prep`` says), in order.

    The model runs in eval mode on batches of ``batch_size`` readable images;
    unreadable files get an :class:`ImagePrediction` with ``error`` set.
    """
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= len(class_names):
        raise ValueError(f"`top` must be an int from 1 to {len(class_names)}. Received: top={top!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    results: dict[int, ImagePrediction] = {}
    ready: list[tuple[int, torch.Tensor]] = []
    for i, file in enumerate(files):
        try:
            ready.append((i, input_from_file(file, prep)))
        except OSError as error:
            results[i] = ImagePrediction(str(file), error=str(error))
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(ready), batch_size):
            chunk = ready[start:start + batch_size]
            probs = model(torch.stack([x for _, x in chunk])).float().softmax(dim=1)  # (B, num_classes)
            values, indices = probs.topk(top, dim=1)  # (B, top)
            for (i, _), row_values, row_indices in zip(chunk, values.tolist(), indices.tolist(), strict=True):
                scores = tuple(ClassScore(c, class_names[c], p) for p, c in zip(row_values, row_indices, strict=True))
                results[i] = ImagePrediction(str(files[i]), scores)
    return [results[i] for i in range(len(files))]


class Classify(Task):
    """Images in, one class per image out."""

    name = "classify"
    metric = "accuracy"
    zoo_kind = "classification"
    options = ("tta",)  # evaluate each image and its mirror image, average the logits
    table_hint = "; make its last dense layer `dense {n}`"
    output_words = "class scores (logits); softmax gives probabilities"
    report_sections = (("confusion_matrix", "confusion", "Confusion matrix"),
                       ("mistakes", "mistakes", "Most confident mistakes"))

    def targets(self, data: ImageDataset) -> torch.Tensor:
        return data.labels

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(output.float(), y, label_smoothing=label_smoothing)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return int((output.argmax(1) == y).sum())  # how many are classified right

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        loss, accuracy, _ = evaluate_batches(model, images, targets, transform, runtime, tta=self.tta)
        return {"loss": loss, "accuracy": accuracy}

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        return (num_classes,)

    def describe(self, num_classes: int) -> str:
        return f"{num_classes} classes"

    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> EvaluationResult:
        images, labels = data.images.to(runtime.device), data.labels.to(runtime.device)
        _, _, logits = evaluate_batches(model, images, labels, transform, runtime, tta=self.tta)
        names = context.class_names
        result = classification_metrics(logits.cpu(), data.labels, names, context.split)
        if context.folder is not None:
            with phase("figures"):
                path = context.folder / "confusion_matrix.png"
                confusion_figure(result.confusion_matrix, names, path,
                                 f"{context.title}, accuracy {result.accuracy:.2%})")
                result.files["confusion_matrix"] = str(path)
                files = data.files or ()
                shown = mistakes_figure(data.images, data.labels, logits.cpu(), names,
                                        context.folder / "mistakes.png", files=files, split=context.split)
            if shown:
                result.files["mistakes"] = str(context.folder / "mistakes.png")
                result.mistakes = [{"index": i, "file": files[i] if i < len(files) else None} for i in shown]
        return result

    def predict_files(self, model: nn.Module, prep: ImagePrep, files: Sequence[str | Path], class_names: Sequence[str],
                      *, top: int = 5, out: Path | None = None) -> list[Prediction]:
        return [p for p in classify_files(model, prep, files, class_names, min(top, len(class_names)))]
