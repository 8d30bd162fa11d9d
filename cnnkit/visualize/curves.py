"""Training curves from a run's ``metrics.jsonl``: loss, accuracy (and any other metric), learning rate.

Every ``train_X`` / ``val_X`` / ``test_X`` key of the records becomes a line
in the panel of metric ``X``, so metrics that other tasks log (``val_mean_iou``,
``val_psnr`` ...) get their panel too; ``lr`` gets its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnnkit.fileio import MAX_JSON_BYTES, check_regular, inside, loads_json
from cnnkit.visualize.plot import pyplot, save_png

SPLITS = ("train", "val", "test")
_STYLE = {"train": ("tab:blue", "o"), "val": ("tab:orange", "s"), "test": ("tab:orange", "s")}
_PANEL_ORDER = ("loss", "accuracy")  # first, then the other metrics alphabetically


def read_history(run: str | Path) -> list[dict[str, Any]]:
    """The records of ``RUN/metrics.jsonl``, one per finished epoch (or of a ``metrics.jsonl`` path)."""
    path = Path(run)
    if path.is_dir():
        path = inside(path, "metrics.jsonl")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; curves need the metrics.jsonl of a run that finished an epoch")
    check_regular(path, MAX_JSON_BYTES)
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = loads_json(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON line ({error})") from None
        if not isinstance(record, dict) or "epoch" not in record:
            raise ValueError(f"{path}:{number}: a record must be a JSON object with an 'epoch'. Received: {line[:80]}")
        records.append(record)
    if not records:
        raise ValueError(f"{path}: no epoch recorded yet")
    return records


def metric_panels(history: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``{metric: [split, ...]}`` for every ``<split>_<metric>`` number in the records, loss and accuracy first."""
    panels: dict[str, list[str]] = {}
    for record in history:
        for key, value in record.items():
            split, _, metric = key.partition("_")
            if metric == "loss_unsmoothed":
                continue  # drawn in the loss panel, beside the optimised loss
            if split in SPLITS and metric and isinstance(value, int | float) and not isinstance(value, bool):
                splits = panels.setdefault(metric, [])
                if split not in splits:
                    splits.append(split)
    order = [m for m in _PANEL_ORDER if m in panels] + sorted(m for m in panels if m not in _PANEL_ORDER)
    return {metric: panels[metric] for metric in order}


def draw_curves(history: list[dict[str, Any]], path: str | Path, title: str = "Training curves") -> Path:
    """One panel per metric (train and held-out split as two lines) and one for the learning rate."""
    panels = metric_panels(history)
    has_lr = any("lr" in record for record in history)
    count = len(panels) + int(has_lr)
    if count == 0:
        raise ValueError("the records hold no train_/val_/test_ metric and no lr to draw")
    plt = pyplot()
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 3.4), squeeze=False)
    smoothed = any("train_loss_unsmoothed" in record for record in history)
    for ax, (metric, splits) in zip(axes[0], panels.items(), strict=False):
        for split in splits:
            key = "train_loss_unsmoothed" if metric == "loss" and split == "train" and smoothed else f"{split}_{metric}"
            points = [(r["epoch"], r[key]) for r in history if key in r]
            colour, marker = _STYLE[split]
            label = "train (no label smoothing, as held-out)" if key == "train_loss_unsmoothed" else split
            ax.plot(*zip(*points, strict=True), color=colour, marker=marker, markersize=4, label=label)
            if key == "train_loss_unsmoothed":  # what the optimiser minimised, thin: not comparable to held-out
                optimised = [(r["epoch"], r["train_loss"]) for r in history if "train_loss" in r]
                ax.plot(*zip(*optimised, strict=True), color=colour, linestyle=":", linewidth=1,
                        label="train (optimised, with label smoothing)")
        if metric == "accuracy":
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:.0%}"))
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.set_ylabel(metric.replace("_", " "))
        ax.legend(fontsize=8)
    if has_lr:
        ax = axes[0, -1]
        steps = [point for r in history for point in r.get("lr_steps") or []]
        if steps:  # per step: warm-up and one-cycle show; x = epochs trained (1.5: half-way through the second)
            ax.plot([x for x, _ in steps], [rate for _, rate in steps], color="tab:green", linewidth=1.5)
            ax.set_title("learning rate (every step)", fontsize=10)
        else:
            points = [(r["epoch"], r["lr"]) for r in history if "lr" in r]
            ax.plot(*zip(*points, strict=True), color="tab:green", marker="o", markersize=4)
            ax.set_title("learning rate (at the end of each epoch)", fontsize=10)
        ax.set_ylabel("learning rate")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    epochs = [r["epoch"] for r in history]
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_png(fig, path)
