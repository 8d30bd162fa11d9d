"""``evaluate(run)``: a trained run on its evaluation split, with metrics.json and figures in the run directory."""

from __future__ import annotations

from pathlib import Path

from cnnkit.data import BatchTransform
from cnnkit.evaluation.figures import confusion_figure, mistakes_figure
from cnnkit.evaluation.metrics import EvaluationResult, classification_metrics
from cnnkit.training import network, rundir
from cnnkit.training.hardware import choose
from cnnkit.training.loop import evaluate_batches


def evaluate(run: str | Path, *, data: str | None = None, data_dir: str | None = None, device: str = "auto",
             figures: bool = True) -> EvaluationResult:
    """Evaluate the run's network on the split it was validated on (the official test split when there is one).

    ``data`` evaluates on another dataset with the same classes and image shape.
    Writes ``metrics.json`` and, with ``figures``, ``confusion_matrix.png`` and
    ``mistakes.png`` into the run directory.
    """
    from cnnkit import data as datasets

    folder = Path(run)
    model, meta = network.load_trained(folder)
    config = rundir.read_json(folder / "config.json")
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
    if list(evaluation.class_names) != names or list(evaluation.images.shape[1:]) != list(meta["input_shape"]):
        raise ValueError(f"--data {data}: its classes {list(evaluation.class_names)[:4]}... and image shape "
                         f"{list(evaluation.images.shape[1:])} differ from the run's {names[:4]}... and "
                         f"{meta['input_shape']}")
    model = model.to(runtime.device)
    transform = BatchTransform.from_dict(meta["transform"])
    images, labels = evaluation.images.to(runtime.device), evaluation.labels.to(runtime.device)
    _, _, logits = evaluate_batches(model, images, labels, transform, runtime)
    result = classification_metrics(logits.cpu(), evaluation.labels, names, split)
    if figures:
        title = f"{meta['source']['name']} on {data or config['data']} ({split}, accuracy {result.accuracy:.2%})"
        confusion_figure(result.confusion_matrix, names, folder / "confusion_matrix.png", title)
        result.files["confusion_matrix"] = str(folder / "confusion_matrix.png")
        if mistakes_figure(evaluation.images, evaluation.labels, logits.cpu(), names, folder / "mistakes.png"):
            result.files["mistakes"] = str(folder / "mistakes.png")
    result.files["metrics"] = str(folder / "metrics.json")
    rundir.write_json(folder / "metrics.json", result.as_dict())
    return result
