"""``TransferConfig``: every choice of a transfer run, typed and checked, saved as the run's ``config.json``.

Fields that mean the same as in :class:`cnnkit.training.TrainConfig` carry the
same names (``data``, ``classes``, ``train_per_class``, ``seed`` ...), so
``cnnkit evaluate`` reads a transfer run's data settings as it reads a
training run's.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cnnkit.training.config import AUGMENTATIONS, Device, Precision, check_field_types, reject_unknown_options

if TYPE_CHECKING:
    from cnnkit.data.spec import DataSpec

Classifier = Literal["linear", "logistic", "svm", "knn"]
BatchNormPolicy = Literal["frozen", "train"]
HEAD_STEPS = 1000  # optimizer steps of the head phase when --head-epochs is not given
_STRATEGY = re.compile(r"^(extract|finetune|freeze:(.+))$")
_LAYER_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class Strategy:
    """One of the slides' three ways to reuse a network: ``extract``, ``freeze:K`` / ``freeze:LAYER``, ``finetune``."""

    kind: Literal["extract", "freeze", "finetune"]
    blocks: int | None = None  # freeze:K: the first K blocks are frozen
    layer: str | None = None  # freeze:LAYER: frozen up to and including the block holding this layer

    @classmethod
    def parse(cls, text: str) -> Strategy:
        match = _STRATEGY.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"--strategy must be extract, freeze:K (K blocks frozen), freeze:LAYER_NAME or finetune. "
                             f"Received: {text!r}")
        if match.group(1) in ("extract", "finetune"):
            return cls(match.group(1))  # type: ignore[arg-type]
        target = match.group(2)
        if target.isdigit():
            if int(target) < 1:
                raise ValueError(f"--strategy freeze:K needs K >= 1 (freeze:0 freezes nothing: use finetune). "
                                 f"Received: {text!r}")
            return cls("freeze", blocks=int(target))
        return cls("freeze", layer=target)

    def __str__(self) -> str:
        if self.kind != "freeze":
            return self.kind
        return f"freeze:{self.blocks if self.blocks is not None else self.layer}"


@dataclass(frozen=True)
class Features:
    """What extract's classifier reads: ``all`` / ``blocks:N`` block outputs, named ``layers``, or the ``last`` features.

    ``all`` and ``blocks:N`` take each block's output (the blocks ``freeze:K``
    counts); ``last`` is the input of the base's own classifier, unpooled and
    unstandardised, as before multi-layer features existed.
    """

    kind: Literal["all", "blocks", "layers", "last"]
    blocks: int | None = None  # blocks:N: the last N blocks before the classifier
    layers: tuple[str, ...] = ()  # LAYER,LAYER: these layers' outputs, in this order

    @classmethod
    def parse(cls, text: str) -> Features:
        message = (f"--features must be all, last, blocks:N (the last N blocks) or layer names separated by commas "
                   f"(e.g. features.13,classifier.0). Received: {text!r}")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(message)
        text = text.strip()
        if text in ("all", "last"):
            return cls(text)  # type: ignore[arg-type]
        if text.startswith("blocks:"):
            count = text.removeprefix("blocks:")
            if not count.isdigit() or int(count) < 1:
                raise ValueError(f"--features blocks:N needs N >= 1. Received: {text!r}")
            return cls("blocks", blocks=int(count))
        names = tuple(part.strip() for part in text.split(","))
        if not all(_LAYER_NAME.match(name) for name in names):
            raise ValueError(message)
        if len(set(names)) != len(names):
            raise ValueError(f"--features names a layer twice. Received: {text!r}")
        return cls("layers", layers=names)

    def __str__(self) -> str:
        if self.kind == "blocks":
            return f"blocks:{self.blocks}"
        return ",".join(self.layers) if self.kind == "layers" else self.kind


@dataclass
class TransferConfig:
    """One transfer run. Every field maps onto a ``cnnkit transfer`` flag of the same name (``_`` -> ``-``)."""

    base: str = "efficientnet_lite0"  # zoo model with pretrained weights, a cnnkit run directory, or a zoo name + --weights
    weights: str | None = None  # torchvision-format state-dict file for --base (alexnet, vgg16, resnet18 ...)
    data: str = "fashion-mnist"  # fashion-mnist, mnist, digits, shapes, folder:PATH
    data_dir: str | None = None  # where the dataset files are
    classes: list[str] = field(default_factory=list)  # keep only these classes (names, indices, ranges like 5-9), relabelled 0..
    train_per_class: int | None = None  # keep this many training images per class (a seeded, stratified draw)
    val_split: float = 0.0  # fraction of the training set held out for validation (evaluated instead of test)
    image_size: int | None = None  # folder datasets: load images at this square size
    grayscale: bool | None = None  # folder datasets: force grey (True) or RGB (False)
    skip_bad_images: bool = False  # folder datasets: skip undecodable files instead of stopping
    strategy: str = "finetune"  # extract, freeze:K, freeze:LAYER_NAME or finetune
    classifier: Classifier = "linear"  # extract: a trained dense head, or scikit-learn's logistic, svm or knn
    knn_k: int = 5  # --classifier knn: neighbours that vote
    features: str = "all"  # extract: what the classifier reads: all (every block's output), blocks:N (the last N), LAYER,LAYER, or last (the old classifier's input)
    feature_grid: int = 2  # extract, except --features last: each output is averaged over a GxG grid (1: global average), then all are concatenated and standardised
    input_size: int | None = None  # side of the square the base sees; None: the base's own, at most 4x the data's side
    epochs: int = 10  # epochs of the unfrozen layers and the head together (freeze and finetune, after the head phase)
    head_epochs: int | None = None  # the new head alone, on features computed once (extract; first, in freeze and finetune); None: ~1,000 steps
    batch_size: int = 32  # images per mini-batch
    lr: float = 1e-3  # peak learning rate of the new head (AdamW, one-cycle)
    backbone_lr: float = 1.0  # rate of the pretrained layers that train, as a fraction of --lr (e.g. 0.1: ten times smaller); 1 measured best (benchmarks/transfer/README.md)
    weight_decay: float = 1e-4  # decoupled weight decay (AdamW)
    label_smoothing: float = 0.1  # cross-entropy target smoothing in [0, 1)
    batchnorm: BatchNormPolicy = "frozen"  # BatchNorm statistics of trainable pretrained layers: frozen, or train (updated)
    augment: list[str] = field(default_factory=list)  # freeze and finetune: any of flip, crop, erase, noise
    seed: int = 0  # subset draw, shuffling, augmentation and the new head's initial weights
    precision: Precision = "auto"  # auto: bf16 where the hardware has it, else fp32
    device: Device = "auto"  # auto: cuda if available, else mps if available, else cpu
    channels_last: bool | None = None  # memory format; None: on for CUDA
    out: str | None = None  # run directory; None: runs/transfer-<base>-<strategy>-<time>

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def data_spec(self) -> DataSpec:
        """The data this configuration reads (recorded in the run's model card)."""
        from cnnkit.data.spec import DataSpec

        return DataSpec(self.data, self.data_dir, self.image_size, self.grayscale, self.val_split, self.seed,
                        self.skip_bad_images, tuple(self.classes), self.train_per_class)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, shared: bool = False) -> TransferConfig:
        """Build and validate; unknown keys and wrong types are errors that name the key.

        ``shared``: settings that several strategies share (``transfer
        compare``), so options tied to one strategy are checked run by run.
        """
        reject_unknown_options(cls, values, "transfer")
        config = cls(**values)
        config.validate(shared=shared)
        return config

    @property
    def parsed_strategy(self) -> Strategy:
        return Strategy.parse(self.strategy)

    @property
    def parsed_features(self) -> Features:
        return Features.parse(self.features)

    def head_epochs_for(self, train_size: int) -> int:
        """Epochs of the head phase: as given, or enough for about 1,000 optimizer steps.

        The head is cheap to train on cached features, and a fixed number of
        steps suits 100 images (250 epochs) as well as 1,000 (32 epochs).
        """
        if self.head_epochs is not None:
            return self.head_epochs
        return math.ceil(HEAD_STEPS / math.ceil(train_size / self.batch_size))

    def validate(self, *, shared: bool = False) -> None:
        """Check types, ranges and choices; the message names the flag and the received value.

        ``shared`` leaves out the checks that tie an option to ``strategy``
        (``--classifier``, ``--features`` and ``--feature-grid`` belong to
        extract, ``--augment`` to the others): ``transfer compare`` runs each
        strategy with the options that apply to it.
        """
        check_field_types(self)
        strategy = self.parsed_strategy
        features = self.parsed_features
        counts = {"epochs": self.epochs, "batch_size": self.batch_size, "knn_k": self.knn_k,
                  "feature_grid": self.feature_grid}
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1. Received: {value}")
        if self.head_epochs is not None and self.head_epochs < 0:
            raise ValueError(f"--head-epochs must be >= 0. Received: {self.head_epochs}")
        if strategy.kind == "extract" and self.classifier == "linear" and self.head_epochs == 0:
            raise ValueError("--strategy extract trains the dense head for --head-epochs epochs; give at least 1")
        for name, optional in (("train_per_class", self.train_per_class), ("input_size", self.input_size)):
            if optional is not None and optional < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1. Received: {optional}")
        if not self.lr > 0 or not 0 < self.backbone_lr <= 1:
            raise ValueError(f"--lr must be positive and --backbone-lr (a fraction of --lr) in (0, 1]. "
                             f"Received: --lr {self.lr}, --backbone-lr {self.backbone_lr}")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1 or not 0 <= self.val_split < 1:
            raise ValueError(f"--weight-decay must be >= 0, --label-smoothing and --val-split in [0, 1). Received: "
                             f"{self.weight_decay}, {self.label_smoothing}, {self.val_split}")
        defaults = TransferConfig()
        if features.kind == "last" and self.feature_grid != defaults.feature_grid:
            raise ValueError(f"--feature-grid pools block or layer outputs; --features last reads the old classifier's "
                             f"input as it is. Received: --feature-grid {self.feature_grid}")
        for name in self.augment:
            if name not in AUGMENTATIONS:
                raise ValueError(f"--augment: unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")
        if not shared:
            self._validate_for_strategy(strategy, defaults)

    def _validate_for_strategy(self, strategy: Strategy, defaults: TransferConfig) -> None:
        """The options that only one kind of strategy reads must not be given to another."""
        if self.classifier != "linear" and strategy.kind != "extract":
            raise ValueError(f"--classifier {self.classifier} works on extracted features: it needs --strategy extract. "
                             f"Received: --strategy {self.strategy}")
        if strategy.kind != "extract" and (self.features != defaults.features
                                           or self.feature_grid != defaults.feature_grid):
            raise ValueError(f"--features and --feature-grid choose what --strategy extract's classifier reads; freeze:K "
                             f"and finetune train their head on the base's last features. Received: --strategy "
                             f"{self.strategy}, --features {self.features}, --feature-grid {self.feature_grid}")
        if self.augment and strategy.kind == "extract":
            raise ValueError("--augment does not apply to --strategy extract: its features are computed once, from "
                             "the images as they are; use freeze:K or finetune to train on augmented images")
