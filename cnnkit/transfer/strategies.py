"""``transfer(config)``: the slides' three ways to reuse a pretrained network, each writing an ordinary run directory.

1. ``extract``: the base frozen whole; its features (by default every
   block's output, pooled on a 2x2 grid, concatenated and standardised)
   computed once; a new classifier (a dense head, or logistic regression, an
   SVM, kNN) on them.
2. ``freeze:K``: the first K blocks frozen (weights and BatchNorm statistics);
   the later blocks train at ``backbone_lr * lr``, the new head at ``lr``.
3. ``finetune``: every layer trains, the pretrained ones at the small rate.

Freeze and finetune first train the new head alone on cached features
(``head_epochs``), so that a random head's large early gradients never reach
the pretrained weights; then everything that is not frozen trains together.
The run directory is what ``cnnkit train`` writes (a model card with source
kind ``transfer``, :mod:`cnnkit.runs`), so ``cnnkit evaluate``, ``predict``
and :meth:`cnnkit.runs.Run.network` work on it, with no need for the
pretrained file. Both phases train through :func:`cnnkit.training.fit`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset
from cnnkit.runs import SUMMARY, ModelCard, Run
from cnnkit.runtime import Runtime, choose
from cnnkit.tasks import Classify
from cnnkit.tasks.classify import evaluate_batches
from cnnkit.training.loop import Callback, LoopOptions, TrainState, fit
from cnnkit.training.optim import AdamW, Schedule, make_scheduler
from cnnkit.training.progress import Reporter
from cnnkit.transfer.backbone import Base, load_base
from cnnkit.transfer.config import Strategy, TransferConfig
from cnnkit.transfer.features import extract_features, fit_sklearn_head, tap_layers, train_linear_head
from cnnkit.transfer.freeze import AuditRow, Block, audit, blocks, freeze, freeze_batchnorm, resolve
from cnnkit.transfer.net import InputAdapter, KNNHead, TransferNet, get_module, new_head, set_module
from cnnkit.transfer.taps import FeatureTaps


@dataclass
class TransferResult:
    """What a transfer run produced (``run_dir`` is None after a dry run)."""

    run_dir: Path | None
    strategy: str
    base: str  # the base network, in words
    eval_split: str  # "test" or "val"; "" when the data has neither
    accuracy: float | None  # on the eval split, after training
    trainable_params: int
    total_params: int
    blocks: list[Block]
    frozen_blocks: int
    audit: list[AuditRow]
    features: dict[str, Any] | None  # extract with --features other than last: the tapped layers (FeatureTaps.to_dict)
    seconds: float  # features, training and the final evaluation
    runtime: str
    model: TransferNet
    input_shape: tuple[int, int, int]  # (C, H, W) of the data, what the model takes
    train_size: int
    eval_size: int
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"run_dir": None if self.run_dir is None else str(self.run_dir), "strategy": self.strategy,
                "base": self.base, "eval_split": self.eval_split, "accuracy": self.accuracy,
                "trainable_params": self.trainable_params, "total_params": self.total_params,
                "blocks": [b.name for b in self.blocks], "frozen_blocks": self.frozen_blocks, "features": self.features,
                "seconds": self.seconds, "runtime": self.runtime, "input_shape": list(self.input_shape),
                "train_size": self.train_size, "eval_size": self.eval_size, "history": self.history,
                "audit": [row.as_dict() for row in self.audit]}


def features_text(result: TransferResult) -> str:
    """What the new head reads, for ``--dry-run``: each tapped layer with its output shape and pooled size."""
    taps = result.model.taps
    if taps is None:
        head = result.model.head
        width = head.features.shape[1] if isinstance(head, KNNHead) else getattr(head, "in_features", 0)
        return f"the new head reads what the old classifier read: {width:,} features"
    lines = [f"the new head reads {taps.num_features:,} features, standardised on the training images: the outputs of "
             f"{len(taps.layers)} layers, each averaged over a {taps.grid}x{taps.grid} grid"]
    return "\n".join(lines + [f"  {line}" for line in taps.describe()])


def default_input_size(base_size: tuple[int, int], data_size: tuple[int, int]) -> tuple[int, int]:
    """The base's own input size, but at most 4x the data's: enlarging further adds compute, not detail."""
    return (min(base_size[0], 4 * data_size[0]), min(base_size[1], 4 * data_size[1]))


def build(base: Base, data_shape: tuple[int, int, int], num_classes: int, config: TransferConfig,
          train_size: int) -> tuple[TransferNet, dict[str, Any]]:
    """The base behind an input adapter, with a new untrained head; and the ``model.json`` source that rebuilds it.

    For ``extract``, the head reads what ``config.features`` names
    (:func:`tap_layers`, one probe pass of a zero image), pooled on a
    ``config.feature_grid`` grid; else the old classifier's input.
    """
    old = get_module(base.model, base.classifier)
    assert isinstance(old, nn.Linear)  # find_classifier guarantees it
    size = ((config.input_size, config.input_size) if config.input_size is not None
            else default_input_size(base.input_shape[1:], data_shape[1:]))
    adapter = InputAdapter(data_shape[0], base.input_shape[0], size, base.mean, base.std)
    taps = None
    if config.parsed_strategy.kind == "extract":
        probe = adapter(torch.zeros((1, *data_shape), device=old.weight.device))  # (1, C, size[0], size[1])
        layers, shapes = tap_layers(base.model, base.classifier, blocks(base.model, base.classifier),
                                    config.parsed_features, probe)
        taps = FeatureTaps(layers, shapes, config.feature_grid) if layers else None
    head: dict[str, Any] = {"name": base.classifier, "type": "linear",
                            "in_features": taps.num_features if taps is not None else old.in_features,
                            "num_classes": num_classes}
    if config.classifier == "knn":
        head.update(type="knn", k=config.knn_k, samples=train_size)
    set_module(base.model, base.classifier, new_head(head))
    net = TransferNet(adapter, base.model, base.classifier, taps)
    name = base.source.get("name", "base")
    source = {"kind": "transfer", "name": f"{name}-{config.strategy.replace(':', '')}", "base": base.source,
              "base_input_shape": list(base.input_shape), "head": head, "adapter": adapter.to_dict(),
              "features": taps.to_dict() if taps is not None else None, "strategy": config.strategy,
              "base_description": base.description}
    return net, source


def apply_strategy(net: TransferNet, strategy: Strategy, batchnorm: str) -> tuple[list[Block], int]:
    """Freeze what ``strategy`` freezes; returns the base's blocks and how many are frozen.

    ``batchnorm="frozen"`` also fixes the statistics of the BatchNorms that
    train (their scale and shift still learn): with a hundred images per
    class, batch statistics are noisy, and the pretrained ones describe the
    features the later layers were trained on.
    """
    found = blocks(net.network, net.head_name)
    if strategy.kind == "extract":
        head = {id(p) for p in net.head.parameters()}
        for param in net.network.parameters():
            param.requires_grad_(id(param) in head)
        freeze_batchnorm(net.network)
        return found, len(found)
    count = 0
    if strategy.kind == "freeze":
        count = resolve(found, strategy.blocks, strategy.layer)
        freeze(net.network, [name for block in found[:count] for name in block.layers])
    if batchnorm == "frozen":
        freeze_batchnorm(net.network)
    return found, count


def discriminative_groups(net: TransferNet, lr: float, backbone_fraction: float,
                          weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer groups: the new head at ``lr``, trainable pretrained layers at ``lr * backbone_fraction``.

    Biases and normalisation scales get no weight decay, as in :func:`cnnkit.training.optim.parameter_groups`.
    """
    head = {id(p) for p in net.head.parameters()}
    groups = []
    for is_head, rate in ((True, lr), (False, lr * backbone_fraction)):
        params = [p for p in net.parameters() if p.requires_grad and (id(p) in head) == is_head]
        groups.append({"params": [p for p in params if p.ndim > 1], "lr": rate, "weight_decay": weight_decay})
        groups.append({"params": [p for p in params if p.ndim <= 1], "lr": rate, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def _loop(config: TransferConfig, epochs: int) -> LoopOptions:
    """What the fit loop reads for one phase of the run (both phases: AdamW on a one-cycle schedule)."""
    return LoopOptions(epochs, config.batch_size, config.seed, config.label_smoothing, eval_every=epochs)


def _augmentation(augment: list[str]) -> BatchTransform:
    """Pixels to [0, 1] (the adapter normalises as the base expects), plus the augmentations asked for."""
    chosen = set(augment)
    return BatchTransform(crop_padding=2 if "crop" in chosen else 0, hflip=0.5 if "flip" in chosen else 0.0,
                          erase=0.5 if "erase" in chosen else 0.0, noise_std=0.03 if "noise" in chosen else 0.0)


class _Saver(Callback):
    """Fit callback: the weights and the whole history (head phase first) after every epoch, atomically."""

    def __init__(self, run: Run, head_history: list[dict[str, Any]], phase: str) -> None:
        self.run, self.head_history, self.phase = run, head_history, phase
        self.history: list[dict[str, Any]] = list(head_history)

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        offset = len(self.head_history)
        self.history = self.head_history + [dict(r, epoch=r["epoch"] + offset, phase=self.phase) for r in state.history]
        self.run.save_weights(state.model)
        self.run.write_history(self.history)


def _log(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


def transfer(config: TransferConfig | None = None, *, quiet: bool = False, dry_run: bool = False,
             **options: Any) -> TransferResult:
    """Reuse ``config.base`` for ``config.data`` by ``config.strategy``; everything lands in the run directory.

    Give a :class:`TransferConfig` or its fields as keywords:
    ``transfer(base="efficientnet_lite0", data="fashion-mnist", strategy="extract", train_per_class=100)``.
    ``dry_run`` builds the network and freezes it, returns the audit, and
    writes nothing. A run that fails or is interrupted leaves no directory
    behind (a transfer run cannot be resumed).
    """
    if config is None:
        config = TransferConfig.from_dict(options)
    elif options:
        raise TypeError(f"transfer: give a TransferConfig or keyword options, not both. Received: {sorted(options)}")
    config.validate()
    strategy = config.parsed_strategy
    runtime = choose(config.device, config.precision, config.channels_last)
    base = load_base(config.base, config.weights)  # before the data: a bad base fails fast
    spec = config.data_spec()
    splits = spec.load()
    evaluation, eval_split = splits.evaluation, splits.eval_split or ""
    shape = splits.train.input_shape
    torch.manual_seed(config.seed)  # the new head's initial weights
    net, source = build(base, shape, splits.num_classes, config, len(splits.train))
    found, frozen = apply_strategy(net, strategy, config.batchnorm)
    net = net.to(runtime.device)
    if runtime.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    params = list(net.parameters())
    result = TransferResult(None, str(strategy), base.description, eval_split, None,
                            sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params),
                            found, frozen, audit(net), source["features"], 0.0, runtime.describe(), net, shape,
                            len(splits.train), 0 if evaluation is None else len(evaluation))
    if dry_run:
        return result
    folder = Path(config.out) if config.out else Path("runs") / (
        f"transfer-{Path(config.base).name}-{str(strategy).replace(':', '')}-{time.strftime('%Y%m%d-%H%M%S')}")
    transform = _augmentation(config.augment)
    card = ModelCard("classify", source, shape, splits.class_names, transform.to_dict(), spec,
                     eval_split=eval_split, skipped_files=tuple(splits.skipped))
    recorded = config.to_dict()
    if net.taps is not None:  # the layers --features resolved to, by name: what the run really read
        recorded["features"] = ",".join(net.taps.layers)
    with Run.create(folder, card, recorded, resumable=False) as run:
        from cnnkit.summarize import summary

        run.write_text(SUMMARY, summary(net, shape, name=source["name"]).to_text())
        _log(quiet, f"transfer {base.description} -> {config.data} ({len(splits.train):,} training images, "
                    f"{splits.num_classes} classes), strategy {strategy}: {frozen} of {len(found)} blocks frozen, "
                    f"{result.trainable_params:,} of {result.total_params:,} parameters train; {runtime.describe()} -> "
                    f"{folder}")
        if net.taps is not None:
            _log(quiet, f"the classifier reads {net.taps.num_features:,} standardised features: the outputs of "
                        f"{', '.join(net.taps.layers)}, each averaged over a {net.taps.grid}x{net.taps.grid} grid")
        started = time.perf_counter()
        result.history = _train(net, strategy, config, splits.train, evaluation, eval_split, transform, runtime, run,
                                quiet)
        result.seconds = time.perf_counter() - started
    result.run_dir = folder
    result.accuracy = result.history[-1].get(f"{eval_split}_accuracy") if result.history else None
    return result


def _train(net: TransferNet, strategy: Strategy, config: TransferConfig, train_set: ImageDataset,
           evaluation: ImageDataset | None, eval_split: str, transform: BatchTransform, runtime: Runtime, run: Run,
           quiet: bool) -> list[dict[str, Any]]:
    """The head phase on cached features, then (freeze, finetune) the fit loop; returns the metrics history."""
    history: list[dict[str, Any]] = []
    if strategy.kind == "extract" or config.head_epochs_for(len(train_set)) > 0:
        history = _head_phase(net, strategy, config, train_set, evaluation, eval_split, runtime, quiet)
        run.save_weights(net)
        run.write_history(history)
    if strategy.kind == "extract":
        return history
    steps = -(-len(train_set) // config.batch_size)
    optimizer = AdamW(discriminative_groups(net, config.lr, config.backbone_lr, config.weight_decay),
                                  lr=config.lr)
    scheduler = make_scheduler(optimizer, Schedule("onecycle", config.epochs), steps)
    state = TrainState(net, optimizer, scheduler, _loop(config, config.epochs), runtime, steps)
    saver = _Saver(run, history, "blocks" if strategy.kind == "freeze" else "all")
    reporter = Reporter(config.epochs, steps, config.batch_size, stream=None if quiet else sys.stdout)
    _log(quiet, f"training the unfrozen pretrained layers at {config.lr * config.backbone_lr:.3g} (--backbone-lr "
                f"{config.backbone_lr:g} x --lr) and the head at {config.lr:.3g} for {config.epochs} epochs")
    train_data = (train_set.images.to(runtime.device), train_set.labels.to(runtime.device))
    fit(state, train_data, None, transform, Classify(), callbacks=[reporter, saver])
    if state.stop_reason == "interrupted":
        raise KeyboardInterrupt
    history = saver.history
    if evaluation is not None:
        images, labels = evaluation.images.to(runtime.device), evaluation.labels.to(runtime.device)
        loss, accuracy, _ = evaluate_batches(net, images, labels, transform, runtime, batch_size=128)
        history[-1][f"{eval_split}_loss"], history[-1][f"{eval_split}_accuracy"] = loss, accuracy
        _log(quiet, f"{eval_split} accuracy {accuracy:.2%} ({len(labels):,} images)")
    run.write_history(history)
    return history


def _head_phase(net: TransferNet, strategy: Strategy, config: TransferConfig, train_set: ImageDataset,
                evaluation: ImageDataset | None, eval_split: str, runtime: Runtime,
                quiet: bool) -> list[dict[str, Any]]:
    """Features through the (still pretrained) base, once; the new head trained on them alone."""
    clock = time.perf_counter()
    shown = {"next": 0.0}

    def report(done: int, total: int) -> None:
        if not quiet and (done >= shown["next"] * total or done == total):
            print(f"  features: {done:,}/{total:,} images, {time.perf_counter() - clock:.0f} s", flush=True)
            shown["next"] += 0.25

    _log(quiet, "computing the base's features once (eval mode, no gradients)")
    if net.taps is not None:
        net.taps.reset()  # raw pooled features out; their standardisation is measured on the training images below
    train_features = extract_features(net, train_set.images, runtime, report=report)
    train_labels = train_set.labels.cpu()
    evaluated = None
    if strategy.kind == "extract" and evaluation is not None:
        shown["next"] = 0.0
        evaluated = (extract_features(net, evaluation.images, runtime, report=report), evaluation.labels.cpu())
    if net.taps is not None:
        net.taps.fit(train_features.to(net.taps.mean.device))
        with torch.no_grad():
            train_features = net.taps(train_features.to(net.taps.mean.device)).cpu()
            if evaluated is not None:
                evaluated = (net.taps(evaluated[0].to(net.taps.mean.device)).cpu(), evaluated[1])
    head = net.head.cpu().float()
    if config.classifier == "linear":
        assert isinstance(head, nn.Linear)
        history = train_linear_head(head, (train_features, train_labels), evaluated,
                                    _loop(config, config.head_epochs_for(len(train_set))), config.lr,
                                    config.weight_decay, eval_split)
    else:
        head = fit_sklearn_head(config.classifier, train_features, train_labels, len(train_set.class_names),
                                config.knn_k, config.seed)
        history = [_sklearn_record(head, (train_features, train_labels), evaluated, eval_split, clock)]
    set_module(net.network, net.head_name, head.to(runtime.device))
    for record in history:
        record["phase"] = "head"
    last = history[-1]
    scores = "".join(f", {split} accuracy {last[f'{split}_accuracy']:.2%}" for split in (eval_split,)
                     if f"{split}_accuracy" in last)
    _log(quiet, f"head ({config.classifier}): train accuracy {last['train_accuracy']:.2%}{scores}, "
                f"{time.perf_counter() - clock:.0f} s")
    return history


def _sklearn_record(head: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                    evaluated: tuple[torch.Tensor, torch.Tensor] | None, eval_split: str, clock: float) -> dict[str, Any]:
    """One metrics record for a classifier fitted in one go (no epochs)."""
    import torch.nn.functional as F

    record: dict[str, Any] = {"epoch": 1}
    pairs = [("train", train)] + ([(eval_split, evaluated)] if evaluated is not None else [])
    with torch.no_grad():
        for split, (features, labels) in pairs:
            logits = head(features)
            record[f"{split}_loss"] = F.cross_entropy(logits, labels).item()
            record[f"{split}_accuracy"] = (logits.argmax(1) == labels).float().mean().item()
    record["time"] = time.perf_counter() - clock
    return record
