"""``compare``: training from scratch and each transfer strategy on the same split, side by side.

Every entry is an ordinary run directory under ``out`` (``out/scratch``,
``out/extract``, ``out/freeze12``, ``out/finetune``); the table lands in
``out/compare.json`` and as a bar chart in ``out/compare.png``: test accuracy,
trainable parameters and seconds of each.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnkit.fileio import atomic_write, write_json
from cnnkit.runs import Run
from cnnkit.transfer.config import Strategy, TransferConfig
from cnnkit.transfer.strategies import transfer

SCRATCH = "scratch"
# a network cnnkit trains well from scratch on small images (global pooling: any input size)
DEFAULT_SCRATCH_MODEL = "vgg_small"


@dataclass
class CompareRow:
    """One strategy's outcome."""

    strategy: str  # "scratch", "extract", "freeze:K" or "finetune"
    accuracy: float | None  # on the eval split
    trainable_params: int
    seconds: float  # training (with feature extraction) and the final evaluation; not loading data or weights
    run_dir: str

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "accuracy": self.accuracy, "trainable_params": self.trainable_params,
                "seconds": round(self.seconds, 3), "run_dir": self.run_dir}


@dataclass
class CompareResult:
    """The comparison, as printed and as saved in ``compare.json``."""

    base: str
    data: str
    eval_split: str
    eval_size: int
    train_size: int
    rows: list[CompareRow]
    out: Path
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base, "data": self.data, "eval_split": self.eval_split, "eval_size": self.eval_size,
                "train_size": self.train_size, "results": [row.as_dict() for row in self.rows], "files": self.files}

    def to_text(self) -> str:
        lines = [f"{self.base} -> {self.data}: {self.train_size:,} training images, accuracy on {self.eval_size:,} "
                 f"{self.eval_split} images", f"{'strategy':<12} {'accuracy':>9} {'trainable params':>17} {'seconds':>8}"]
        for row in self.rows:
            accuracy = "-" if row.accuracy is None else f"{row.accuracy:.2%}"
            lines.append(f"{row.strategy:<12} {accuracy:>9} {row.trainable_params:>17,} {row.seconds:>8.0f}")
        return "\n".join(lines)


def default_freeze_blocks(count: int) -> int:
    """Blocks ``compare`` freezes by default: the first two thirds, whose features are the more generic."""
    return max(1, round(2 * count / 3))


def _scratch_model(base: str, folder: Path) -> tuple[str, str]:
    """The network trained from scratch, and why: the base run's own architecture, else a small CNN.

    A base run built from a layer table gets that table, written to ``folder``;
    its last dense layer must match the new data's classes.
    """
    if Run.is_run(base):
        source = Run.open(base).card.source
        if source.get("kind") == "zoo":
            return source["name"], "the base run's architecture"
        if source.get("kind") == "table":
            table = folder / "base_table.txt"  # a fixed name: nothing read from the run becomes a path
            atomic_write(table, source["text"].encode())
            return str(table), "the base run's layer table"
    return DEFAULT_SCRATCH_MODEL, "a small CNN"


def compare(config: TransferConfig, *, out: str | Path | None = None, strategies: Sequence[str] | None = None,
            scratch_model: str | None = None, scratch_epochs: int = 30, quiet: bool = False) -> CompareResult:
    """Train from scratch and with each strategy (default ``scratch, extract, freeze:K, finetune``) on one split.

    ``config`` holds the base, the data and the transfer settings every
    strategy shares; its ``strategy`` and ``out`` are replaced for each, and
    the runs go to ``out/<strategy>`` (default ``out``: runs/compare-<base>-<time>).
    ``freeze:K`` defaults to freezing two thirds of the base's blocks. The
    scratch run is ``cnnkit train`` with ``scratch_model`` (default: the base
    run's architecture, or ``vgg_small``), the same data, seed and
    augmentation, ``scratch_epochs`` epochs, evaluated after the last.
    """
    from cnnkit.training import TrainConfig, train

    folder = Path(out) if out is not None else Path("runs") / (
        f"compare-{Path(config.base).name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"--out {folder}: the directory exists and is not empty; choose another")
    if strategies is None:
        probe = transfer(dataclasses.replace(config, strategy="extract", classifier="linear", augment=[]),
                         quiet=True, dry_run=True)
        strategies = [SCRATCH, "extract", f"freeze:{default_freeze_blocks(len(probe.blocks))}", "finetune"]
    for name in strategies:
        if name != SCRATCH:
            Strategy.parse(name)  # every name checked before hours of training
    rows: list[CompareRow] = []
    base_text, eval_split, eval_size, train_size = config.base, "", 0, 0
    for name in strategies:
        run = folder / name.replace(":", "")
        if name == SCRATCH:
            model, why = (scratch_model, "as asked") if scratch_model else _scratch_model(config.base, folder)
            if not quiet:
                print(f"\n== scratch: {model} ({why}), {scratch_epochs} epochs", flush=True)
            scratch = TrainConfig(model=model, data=config.data, data_dir=config.data_dir, classes=list(config.classes),
                                  train_per_class=config.train_per_class, val_split=config.val_split,
                                  image_size=config.image_size, grayscale=config.grayscale,
                                  skip_bad_images=config.skip_bad_images, epochs=scratch_epochs,
                                  eval_every=scratch_epochs, batch_size=config.batch_size, augment=list(config.augment),
                                  seed=config.seed, precision=config.precision, device=config.device,
                                  channels_last=config.channels_last, out=str(run))
            trained = train(scratch, quiet=quiet)
            seconds = trained.final.get("time", 0.0)  # training and the final evaluation, as for the strategies
            split = "val" if config.val_split > 0 else "test"
            params = sum(p.numel() for p in trained.model.parameters() if p.requires_grad)
            rows.append(CompareRow(SCRATCH, trained.final.get(f"{split}_accuracy"), params, seconds, str(run)))
            continue
        if not quiet:
            print(f"\n== {name}", flush=True)
        extract = Strategy.parse(name).kind == "extract"
        options: dict[str, Any] = {"strategy": name, "out": str(run)}
        if extract:
            options["augment"] = []  # features are computed once, from the images as they are
        else:  # the classifier and its features are extract's choices; the others train a dense head on the last features
            defaults = TransferConfig()
            options.update(classifier="linear", features=defaults.features, feature_grid=defaults.feature_grid)
        result = transfer(dataclasses.replace(config, **options), quiet=quiet)
        base_text, eval_split, eval_size, train_size = result.base, result.eval_split, result.eval_size, result.train_size
        rows.append(CompareRow(name, result.accuracy, result.trainable_params, result.seconds, str(run)))
    if not train_size:  # only scratch ran: count the images as it loaded them
        eval_size, train_size = _sizes(config)
    comparison = CompareResult(base_text, config.data + (f" classes {','.join(config.classes)}" if config.classes else ""),
                               eval_split or ("val" if config.val_split > 0 else "test"), eval_size, train_size, rows,
                               folder)
    comparison.files = {"json": str(folder / "compare.json"), "chart": str(folder / "compare.png")}
    write_json(folder / "compare.json", comparison.as_dict())
    from cnnkit.transfer.chart import comparison_chart

    comparison_chart(comparison, folder / "compare.png")
    return comparison


def _sizes(config: TransferConfig) -> tuple[int, int]:
    """Images in the eval split and in the training split, as every run loaded them."""
    splits = config.data_spec().load()
    evaluation = splits.evaluation
    return (0 if evaluation is None else len(evaluation)), len(splits.train)
