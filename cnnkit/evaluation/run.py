"""``evaluate(run)``: a trained run on its evaluation split, with metrics.json and figures in the run directory."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnkit.data import BatchTransform
from cnnkit.evaluation.dense import (
    ReconstructionResult,
    SegmentationResult,
    evaluate_reconstruction,
    evaluate_segmentation,
)
from cnnkit.evaluation.dense_figures import image_grid_figure, segmentation_figure
from cnnkit.evaluation.figures import confusion_figure, mistakes_figure
from cnnkit.evaluation.metrics import EvaluationResult, classification_metrics
from cnnkit.training import measures, network, rundir
from cnnkit.training.hardware import Runtime, choose
from cnnkit.training.tasks import Task, evaluate_batches, make_task

Result = EvaluationResult | SegmentationResult | ReconstructionResult
SHOWN = 8  # images in each example figure


def evaluate(run: str | Path, *, data: str | None = None, data_dir: str | None = None, device: str = "auto",
             figures: bool = True) -> Result:
    """Evaluate the run's network on the split it was validated on (the official test split when there is one).

    ``data`` evaluates on another dataset with the same classes and image shape
    (for reconstruction and denoising: the same image shape). Writes
    ``metrics.json`` and, with ``figures``, the task's figures into the run
    directory, each listed in the result's ``files``: ``confusion_matrix.png`` and
    ``mistakes.png`` (classify); ``segmentation.png``, ``segmentation_mistakes.png``
    and ``confusion_matrix.png`` of pixels (segment); ``denoising.png`` or
    ``reconstructions.png`` (denoise, reconstruct).
    """
    from cnnkit import data as datasets

    folder = Path(run)
    model, meta = network.load_trained(folder)
    config = rundir.read_json(folder / "config.json")
    task = make_task(meta.get("task", "classify"), meta.get("noise"))
    runtime = choose(device, "fp32", False)
    val_split = 0.0 if data else float(config.get("val_split", 0.0))
    splits = datasets.load(data or config["data"], data_dir=data_dir or config.get("data_dir"),
                           image_size=config.get("image_size"), grayscale=config.get("grayscale"),
                           val_split=val_split, seed=int(config.get("seed", 0)),
                           skip_bad_images=bool(config.get("skip_bad_images", False)),
                           classes=None if data else config.get("classes"))
    evaluation, split = (splits.val, "val") if val_split > 0 else (splits.test, "test")
    if evaluation is None:
        raise ValueError(f"{data or config['data']} has no test split; train with --val-split to evaluate on held-out data")
    names = list(meta["class_names"])
    same_classes = list(evaluation.class_names) == names or task.name in ("reconstruct", "denoise")
    if not same_classes or list(evaluation.images.shape[1:]) != list(meta["input_shape"]):
        raise ValueError(f"--data {data}: its classes {list(evaluation.class_names)[:4]}... and image shape "
                         f"{list(evaluation.images.shape[1:])} differ from the run's {names[:4]}... and "
                         f"{meta['input_shape']}")
    model = model.to(runtime.device)
    transform = BatchTransform.from_dict(meta["transform"])
    images, targets = evaluation.images.to(runtime.device), task.targets(evaluation).to(runtime.device)
    title = f"{meta['source']['name']} on {data or config['data']} ({split}"
    seed = int(config.get("seed", 0))
    result: Result
    if task.name == "segment":
        result = _segmentation(task, model, images, targets, transform, runtime, names, split, seed, folder,
                               title if figures else None)
    elif task.name in ("reconstruct", "denoise"):
        result = _reconstruction(task, model, images, targets, transform, runtime, split, seed, folder,
                                 title if figures else None)
    else:
        _, _, logits = evaluate_batches(model, images, targets, transform, runtime, tta=bool(config.get("tta", False)))
        result = classification_metrics(logits.cpu(), evaluation.labels, names, split)
        if figures:
            confusion_figure(result.confusion_matrix, names, folder / "confusion_matrix.png",
                             f"{title}, accuracy {result.accuracy:.2%})")
            result.files["confusion_matrix"] = str(folder / "confusion_matrix.png")
            if mistakes_figure(evaluation.images, evaluation.labels, logits.cpu(), names, folder / "mistakes.png"):
                result.files["mistakes"] = str(folder / "mistakes.png")
    result.files["metrics"] = str(folder / "metrics.json")
    rundir.write_json(folder / "metrics.json", result.as_dict())
    return result


def _segmentation(task: Task, model: nn.Module, images: torch.Tensor, masks: torch.Tensor, transform: BatchTransform,
                  runtime: Runtime,
                  names: list[str], split: str, seed: int, folder: Path, title: str | None) -> SegmentationResult:
    result, predicted = evaluate_segmentation(task, model, images, masks, transform, runtime, names, split, seed)
    if title is None:
        return result
    images, masks = images.cpu(), masks.cpu()
    spread = _spread(len(images), SHOWN)  # a fixed, even sample of the split
    accuracy = (predicted == masks).float().mean((1, 2))  # (N,) each image's pixel accuracy
    worst = accuracy.argsort()[:SHOWN].tolist()
    figures = {"segmentation": (spread, f"{title}, mean IoU {result.mean_iou:.3f})"),
               "segmentation_mistakes": (worst, f"{title}: the {len(worst)} images with the most wrong pixels)")}
    for name, (indices, heading) in figures.items():
        segmentation_figure(images, masks, predicted, indices, names, folder / f"{name}.png", heading)
        result.files[name] = str(folder / f"{name}.png")
    confusion_figure(result.confusion_matrix, names, folder / "confusion_matrix.png",
                     f"{title}, pixels, pixel accuracy {result.pixel_accuracy:.2%})")
    result.files["confusion_matrix"] = str(folder / "confusion_matrix.png")
    return result


def _reconstruction(task: Task, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                    transform: BatchTransform, runtime: Runtime, split: str, seed: int, folder: Path, title: str | None) -> ReconstructionResult:
    result, shown = evaluate_reconstruction(task, model, images, targets, transform, runtime, split, seed, SHOWN)
    if title is None:
        return result
    psnr = {key: [f"{v:.1f} dB" for v in measures.psnr(shown[key], shown["clean"])] for key in ("input", "output")}
    if result.noise is not None:
        rows = [(f"noisy ({result.noise})", shown["input"]), ("denoised", shown["output"]), ("clean", shown["clean"])]
        captions = {rows[0][0]: psnr["input"], "denoised": psnr["output"]}
        heading = (f"{title}): PSNR {result.psnr_noisy:.2f} dB noisy -> {result.psnr:.2f} dB denoised, "
                   f"SSIM {result.ssim_noisy:.3f} -> {result.ssim:.3f}")
        name = "denoising"
    else:
        rows = [("original", shown["clean"]), ("reconstruction", shown["output"])]
        captions = {"reconstruction": psnr["output"]}
        heading = f"{title}): PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.3f}"
        name = "reconstructions"
    image_grid_figure(rows, folder / f"{name}.png", heading, captions)
    result.files[name] = str(folder / f"{name}.png")
    return result


def _spread(count: int, shown: int) -> list[int]:
    """``shown`` indices spread evenly over ``0 .. count - 1`` (all of them when there are fewer)."""
    if count <= shown:
        return list(range(count))
    return [round(i * (count - 1) / (shown - 1)) for i in range(shown)]
