"""``write_report(run)``: everything about one run in ``RUN/report.html``, with its figures as PNGs beside it.

The page shows the configuration, the layer summary, the training curves, the
metrics of ``metrics.json`` (every scalar it holds, whatever the task), the
confusion matrix and the confident mistakes, the first layer's filters, and the
feature maps and Grad-CAM of one held-out image. A part that cannot be drawn
(no evaluation yet, the dataset no longer on this machine, a network that is
not a classifier) becomes a note in its section saying why; the rest is still
written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnkit.report.html import Section, render
from cnnkit.runs import Run
from cnnkit.tasks import Task, task_class
from cnnkit.visualize import draw_attribution, draw_curves, draw_feature_maps, draw_filters, feature_maps, gradcam
from cnnkit.visualize.curves import read_history

REPORT = "report.html"
_DRAW_ERRORS = (ValueError, TypeError, OSError)  # what the library raises for inputs it cannot use


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    path: Path  # RUN/report.html
    figures: dict[str, Path] = field(default_factory=dict)  # name -> PNG drawn by the report
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why

    def as_dict(self) -> dict[str, Any]:
        return {"report": str(self.path), "files": [str(self.path), *map(str, self.figures.values())],
                "notes": self.notes}


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every scalar of metrics.json, and every dict of scalars one level down (``macro_avg precision``)."""
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        if key == "files":
            continue
        if _scalar(value):
            rows.append((key, value))
        elif isinstance(value, dict) and value and all(_scalar(v) for v in value.values()):
            rows += [(f"{key} {sub}", v) for sub, v in value.items()]
    return rows


def _recorded_file(folder: Path, recorded: str) -> Path | None:
    """A figure metrics.json recorded, in the run directory (by its name: runs may be moved), as a regular file.

    Only the run directory is read: a path in a run's files never makes the report embed a file from elsewhere.
    """
    candidate = folder / Path(recorded).name
    return candidate if candidate.is_file() and not candidate.is_symlink() else None  # (a link: left out)


def _held_out(run: Run) -> tuple[Any, str]:
    """The run's held-out split (val, else test, else train) as the run loaded it (its classes too), and its name."""
    if run.card.data is None:  # data given from Python: the run keeps its held-out split itself
        return run.held_out()
    splits = run.data().load()
    held_out, split = (splits.evaluation, splits.eval_split) if splits.evaluation is not None else (splits.train,
                                                                                                    "train")
    if held_out.input_shape != run.card.input_shape:
        raise ValueError(f"the {run.data().name} images are now {list(held_out.input_shape)}, the run was "
                         f"trained on {list(run.card.input_shape)}")
    return held_out, str(split)


def _model_sections(run: Run, report: Report, sample: int) -> list[Section]:
    """Filters, feature maps and Grad-CAM: the parts that need the trained network (and for two, a real image)."""
    folder = run.folder
    filters = Section("filters", "First-layer filters")
    maps = Section("feature-maps", "Feature maps of a held-out image")
    cam = Section("gradcam", "Grad-CAM of that image")
    card = run.card
    scores_classes = len(card.make_task().output_shape(card.input_shape, len(card.class_names))) == 1
    sections = [filters, maps, cam] if scores_classes else [filters, maps]  # Grad-CAM explains class scores
    try:
        model = run.network()
    except _DRAW_ERRORS as error:
        for section in sections:
            section.note(f"the trained network could not be loaded: {error}")
        report.notes.append(f"network: {error}")
        return sections
    try:
        drawn = draw_filters(model, folder / "filters.png")
        filters.image(drawn.path, f"{drawn.layer} ({drawn.kind}), weights {'x'.join(map(str, drawn.shape))}")
        report.figures["filters"] = drawn.path
    except _DRAW_ERRORS as error:
        filters.note(f"no filters drawn: {error}")
        report.notes.append(f"filters: {error}")
    try:
        held_out, split = _held_out(run)
    except _DRAW_ERRORS as error:  # e.g. the dataset is not on this machine any more
        for section in (maps, cam):
            section.note(f"no held-out image: {error}")
        report.notes.append(f"sample image: {error}")
        return sections
    if not 0 <= sample < len(held_out):
        raise ValueError(f"--sample must be an index from 0 to {len(held_out) - 1} of the {split} split. "
                         f"Received: {sample}")
    image, label = held_out.images[sample], int(held_out.labels[sample])  # (C, H, W) uint8, class index
    x = run.card.batch_transform()(image.unsqueeze(0), train=False)  # (1, C, H, W) normalised
    picture = (image.float() / 255).permute(1, 2, 0).squeeze(-1).numpy()  # (H, W) or (H, W, C) in [0, 1]
    names = list(run.card.class_names)
    truth = names[label] if label < len(names) else str(label)
    with torch.no_grad():
        output = model(x)  # Run.network returns the network in eval mode
    described = f"{split} image #{sample}, true class {truth!r}"
    if output.dim() == 2:
        probs = output.float().softmax(1)[0]
        top = int(probs.argmax())
        described += f", predicted {names[top] if top < len(names) else top!r} ({float(probs[top]):.0%})"
    try:
        drawn_maps = draw_feature_maps(feature_maps(model, x), picture, folder / "feature_maps.png",
                                       title=f"Feature maps: {described}")
        maps.image(drawn_maps.path, f"{described}; layers {', '.join(row['layer'] for row in drawn_maps.layers)}")
        report.figures["feature_maps"] = drawn_maps.path
    except _DRAW_ERRORS as error:
        maps.note(f"no feature maps drawn: {error}")
        report.notes.append(f"feature maps: {error}")
    if not scores_classes:
        return sections
    try:
        result = gradcam(model, x)
        path = draw_attribution(result, picture, folder / "gradcam.png", names, title=f"{split} image #{sample}")
        cam.image(path, f"where the network found evidence for its prediction, at layer {result.layer}")
        if result.caution:  # this network is one where Grad-CAM is known to mislead: say so, not in general
            cam.note(f"Read this heat map with care: {result.caution}.")
        else:
            cam.paragraph("Grad-CAM weighs each map by its gradient averaged over the map, which suits this network: "
                          "it pools its maps globally before the classifier.")
        report.figures["gradcam"] = path
    except _DRAW_ERRORS as error:
        cam.note(f"no Grad-CAM drawn: {error}")
        report.notes.append(f"Grad-CAM: {error}")
    return sections


def _metric_sections(folder: Path, metrics: dict[str, Any] | None, task: type[Task]) -> list[Section]:
    """Metrics, the task's own figures (classify: confusion matrix, mistakes), and any other figure metrics.json lists.

    A figure of ``task.report_sections`` gets a section of its own, which says so when it is missing; any other
    PNG listed in metrics.json goes under "More figures".
    """
    table = Section("metrics", "Metrics")
    own = {key: Section(anchor, title) for key, anchor, title in task.report_sections}
    if metrics is None:
        for section in (table, *own.values()):
            section.note(f"not evaluated yet: run `cnnkit evaluate {folder}`")
        return [table, *own.values()]
    table.table(("metric", "value"), _metric_rows(metrics))
    per_class = metrics.get("per_class")
    if isinstance(per_class, list) and per_class and all(isinstance(row, dict) for row in per_class):
        header = list(per_class[0])
        table.table(header, [[row.get(column) for column in header] for row in per_class])
    files = {key: value for key, value in (metrics.get("files") or {}).items() if isinstance(value, str)}
    for key in own:  # an older metrics.json may not list a figure that is there
        if key not in files and (folder / f"{key}.png").is_file():
            files[key] = str(folder / f"{key}.png")
    more = Section("more-figures", "More figures")
    for key, recorded in files.items():
        if not recorded.lower().endswith(".png"):
            continue
        found = _recorded_file(folder, recorded)
        target = own.get(key, more)
        if found is None:
            linked = (folder / Path(recorded).name).is_symlink()
            target.note(f"{key}: {Path(recorded).name} is a symbolic link; only the run's own files are embedded"
                        if linked else f"{key}: {recorded} is listed in metrics.json but missing")
        else:
            target.image(found, key.replace("_", " "))
    for key, section in own.items():
        if not section.blocks:
            section.note("no mistakes to show" if key == "mistakes" else "none drawn")
    return [table, *own.values(), *([more] if more.blocks else [])]


def write_report(run: str | Path | Run, *, sample: int = 0) -> Report:
    """Write ``RUN/report.html`` (and its PNGs: curves, filters, feature maps, Grad-CAM); returns what was written.

    ``sample`` picks the held-out image whose feature maps and Grad-CAM are shown.
    The page is self-contained (images embedded) and written atomically.
    """
    opened = Run.open(run)
    folder, card = opened.folder, opened.card
    config = opened.config()
    metrics = opened.metrics()  # read (and checked) before anything is drawn: a damaged file leaves the run as it was
    report = Report(folder / REPORT)
    settings = Section("configuration", "Configuration")
    settings.table(("setting", "value"), [(key, "" if value is None else str(value)) for key, value in config.items()])
    names = card.class_names
    prep = card.prep()
    settings.table(("data", "value"), [
        ("input shape (C x H x W)", "x".join(map(str, card.input_shape))),
        ("classes", f"{len(names)}: {', '.join(map(str, names[:20]))}{' ...' if len(names) > 20 else ''}"),
        ("normalisation mean / std", f"{prep.mean} / {prep.std}"),
        ("image files", f"{'centre cut to the aspect ratio' if prep.fit == 'crop' else 'whole image'}, resized "
                        f"({prep.interpolation})"),
        ("held-out split", card.eval_split or "none"),
    ])
    summary = Section("network", "Network")
    summary_file = folder / "summary.txt"
    if summary_file.is_file() and not summary_file.is_symlink() and summary_file.stat().st_size <= 1 << 20:
        summary.preformatted(summary_file.read_text(encoding="utf-8", errors="replace"))
    else:
        summary.note("summary.txt is missing, a link to a file outside the run, or too large to show")
    curves = Section("curves", "Training curves")
    try:
        history = read_history(folder)
        report.figures["curves"] = draw_curves(history, folder / "curves.png", title=f"Training curves: {folder.name}")
        curves.image(report.figures["curves"], "loss, accuracy and learning rate per epoch (metrics.jsonl)")
    except _DRAW_ERRORS as error:
        curves.note(f"no curves: {error}")
        report.notes.append(f"curves: {error}")
        history = []
    sections = [settings, summary, curves, *_metric_sections(folder, metrics, task_class(card.task)),
                *_model_sections(opened, report, sample)]
    subtitle = [f"{card.name} on {card.data.name if card.data else '?'}, {len(history)} epoch(s)"
                + (f", {metrics.get('split', 'held-out')} accuracy {metrics['accuracy']:.2%}" if metrics and isinstance(
                    metrics.get("accuracy"), float) else ""),
                f"written by cnnkit on {time.strftime('%Y-%m-%d %H:%M')}"]
    opened.write_text(REPORT, render(f"cnnkit run {folder.resolve().name}", subtitle, sections))
    return report
