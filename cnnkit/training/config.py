"""``TrainConfig``: every choice of a training run, typed, checked, and saved as the run's ``config.json``."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnkit.cardcheck import MAX_SIDE
from cnnkit.training.recipes import recipe_options

if typing.TYPE_CHECKING:
    from cnnkit.data.spec import DataSpec
    from cnnkit.training.loop import LoopOptions
    from cnnkit.training.optim import Schedule as LrSchedule

Optimizer = Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"]
Schedule = Literal["constant", "step", "cosine", "onecycle"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda", "mps"]

# a learning rate that works for each optimizer when none is given
DEFAULT_LR: dict[str, float] = {"sgd": 0.05, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.004, "adamw": 0.004}
AUGMENTATIONS = ("flip", "crop", "erase", "noise")


@dataclass
class TrainConfig:
    """One training run. Every field maps onto a ``cnnkit train`` flag of the same name (``_`` -> ``-``).

    The defaults are those of ``task="classify"``; :meth:`from_dict` fills the
    options another task needs from its ``defaults`` (:mod:`cnnkit.tasks`) where they are not given.
    """

    recipe: str | None = None  # a measured preset of the options below (fast, for classify); options given override it
    task: str = "classify"  # classify images; segment (a class per pixel); reconstruct or denoise images
    model: str = "lenet5"  # a zoo name or a layer-table file (.txt); per task: lenet5, unet, conv_autoencoder, denoising_autoencoder
    model_options: list[str] = field(default_factory=list)  # zoo model options as KEY=VALUE, e.g. width=16 (segment: width=16)
    data: str = "fashion-mnist"  # fashion-mnist, mnist, digits, shapes, shapes-seg (segment's default), folder:PATH
    noise: str | None = None  # the corruption of --task denoise: gaussian:STD or saltpepper:FRACTION (denoise: gaussian:0.3)
    data_dir: str | None = None  # where the dataset files are (else $CNNKIT_DATA, then system paths)
    epochs: int = 3  # passes over the training set (segment: 8)
    batch_size: int = 128  # images per optimizer step (the global batch: torchrun's processes split it; segment: 16)
    optimizer: Optimizer = "adam"
    lr: float | None = None  # peak learning rate; None: DEFAULT_LR for the optimizer
    momentum: float = 0.9  # SGD and RMSprop
    nesterov: bool = False  # SGD only
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    schedule: Schedule = "onecycle"  # learning rate over the run, stepped every batch
    warmup_epochs: float = 0.0  # linear warm-up from 0 (fractions of an epoch allowed)
    step_epochs: int = 1  # schedule=step: multiply the rate by step_gamma every this many epochs
    step_gamma: float = 0.5
    label_smoothing: float = 0.1  # cross-entropy target smoothing in [0, 1) (other tasks than classify: 0)
    clip_grad_norm: float | None = None  # clip the global gradient norm to this value
    augment: list[str] = field(default_factory=list)  # any of flip, crop, erase, noise
    tta: bool = False  # test-time augmentation: evaluate on each image and its mirror image, average the logits
    val_split: float = 0.0  # fraction of the training set held out for validation
    image_size: int | None = None  # folder datasets: resize to this square size
    grayscale: bool | None = None  # folder datasets: force grey (True) or RGB (False)
    skip_bad_images: bool = False  # folder datasets: skip undecodable files instead of stopping
    classes: list[str] = field(default_factory=list)  # keep only these classes (names, indices, ranges like 5-9), relabelled 0..
    train_per_class: int | None = None  # keep this many training images per class (a seeded, stratified draw; segmentation: per class of each image's largest object)
    eval_every: int = 1  # evaluate on the held-out split every this many epochs, and after the last
    early_stop: int | None = None  # stop once the validation score has not improved for this many evaluations; model.safetensors keeps the best epoch (needs --val-split)
    seed: int = 0  # shuffling, augmentation, dropout and initial weights
    precision: Precision = "auto"  # auto: bf16 where the hardware has it, else fp32 (fp16 + scaler on old GPUs)
    device: Device = "auto"  # auto: cuda if available, else mps (Apple silicon) if available, else cpu
    channels_last: bool | None = None  # memory format; None: on (NHWC is faster on CPUs and GPUs alike)
    compile: bool = False  # torch.compile the training step's network (compiling takes a while first)
    threads: int | None = None  # CPU threads for PyTorch's kernels (a shared machine); None: PyTorch's default
    out: str | None = None  # run directory; None: runs/<model>-<data>-<time>

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build and validate; unknown keys and wrong types are errors that name the key.

        Options not in ``values`` take the recipe's (``recipe``), then the task's
        (its ``defaults``), then the field's default.
        """
        from cnnkit.tasks import TASKS

        reject_unknown_options(cls, values, "training")
        task = TASKS.get(values.get("task", "classify"))  # an unknown task fails in validate
        task_defaults = task.defaults if task is not None else {}
        recipe = recipe_options(values["recipe"]) if values.get("recipe") is not None else {}
        config = cls(**{**copy.deepcopy(task_defaults), **recipe, **values})
        config.validate()
        return config

    def validate(self) -> None:
        """Check types, ranges and choices; the message names the option and the received value."""
        check_field_types(self)
        positive: dict[str, int] = {"epochs": self.epochs, "batch_size": self.batch_size, "step_epochs": self.step_epochs,
                                    "eval_every": self.eval_every}
        if self.threads is not None:
            positive["threads"] = self.threads
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1. Received: {value}")
        ranges: dict[str, tuple[float, float, float]] = {"label_smoothing": (self.label_smoothing, 0.0, 1.0), "val_split": (self.val_split, 0.0, 1.0),
                  "momentum": (self.momentum, 0.0, 1.0)}
        for name, (fraction, low, high) in ranges.items():
            if not low <= fraction < high:
                raise ValueError(f"--{name.replace('_', '-')} must be in [{low}, {high}). Received: {fraction}")
        for name, optional in (("lr", self.lr), ("clip_grad_norm", self.clip_grad_norm)):
            if optional is not None and not optional > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive. Received: {optional}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or not 0 < self.step_gamma <= 1:
            raise ValueError(f"--weight-decay and --warmup-epochs must be >= 0 and --step-gamma in (0, 1]. Received: "
                             f"{self.weight_decay}, {self.warmup_epochs}, {self.step_gamma}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"--warmup-epochs ({self.warmup_epochs}) must be shorter than --epochs ({self.epochs})")
        for name in self.augment:
            if name not in AUGMENTATIONS:
                raise ValueError(f"--augment: unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise ValueError(f"--train-per-class must be at least 1. Received: {self.train_per_class}")
        if self.early_stop is not None and self.early_stop < 1:
            raise ValueError(f"--early-stop must be at least 1 (evaluations without improvement). Received: "
                             f"{self.early_stop}")
        if self.early_stop is not None and self.val_split <= 0:
            raise ValueError("--early-stop watches a validation split: add --val-split (e.g. 0.1); stopping on the "
                             "test split would pick the epoch by the test score, which then no longer measures it")
        if self.image_size is not None and not 1 <= self.image_size <= MAX_SIDE:
            raise ValueError(f"--image-size must be from 1 to {MAX_SIDE} pixels. Received: {self.image_size}")
        if self.recipe is not None:
            recipe_options(self.recipe)  # an unknown name is an error that lists the known ones
            if self.task != "classify":
                raise ValueError(f"--recipe {self.recipe} is a recipe for --task classify. Received: --task {self.task}; "
                                 f"leave out --recipe and set the options (or take the task's defaults)")
        if self.nesterov and self.optimizer != "sgd":
            raise ValueError(f"--nesterov applies to --optimizer sgd only. Received: --optimizer {self.optimizer}")
        self._validate_task()

    def _validate_task(self) -> None:
        # imported here: `cnnkit train --help` builds its flags from this module and must not pay for torch
        from cnnkit.tasks import make_task

        task = make_task(self.task, self.noise, self.tta)  # the task's own options are checked there
        if not task.smooths_labels and self.label_smoothing:
            raise ValueError(f"--label-smoothing applies to cross-entropy (classify, segment); --task {self.task} "
                             f"learns pixel values. Received: --label-smoothing {self.label_smoothing}")
        for option in self.model_options:
            key, equals, value = option.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise ValueError(f"--model-options must be KEY=VALUE pairs, e.g. width=16. Received: {option!r}")

    def data_spec(self) -> DataSpec:
        """The data this configuration reads (recorded in the run's model card)."""
        from cnnkit.data.spec import DataSpec

        return DataSpec(self.data, self.data_dir, self.image_size, self.grayscale, self.val_split, self.seed,
                        self.skip_bad_images, tuple(self.classes), self.train_per_class)

    def loop_options(self) -> LoopOptions:
        """What the fit loop reads of this configuration."""
        from cnnkit.training.loop import LoopOptions

        return LoopOptions(self.epochs, self.batch_size, self.seed, self.label_smoothing, self.clip_grad_norm,
                           self.eval_every)

    def lr_schedule(self) -> LrSchedule:
        """The learning-rate schedule of this configuration."""
        from cnnkit.training.optim import Schedule as LrSchedule

        return LrSchedule(self.schedule, self.epochs, self.warmup_epochs, self.step_epochs, self.step_gamma)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


def reject_unknown_options(config_class: type, values: dict[str, Any], what: str) -> None:
    """A key of ``values`` that is not a field of the dataclass ``config_class`` is a ``ValueError`` naming it."""
    names = {f.name for f in dataclasses.fields(config_class)}
    for key in values:
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"unknown {what} option {key!r}.{hint}")


def check_field_types(config: Any) -> None:
    """Each field of the dataclass instance ``config`` against its type hint; the message names the flag and value."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        _check_type(f.name, getattr(config, f.name), hints[f.name])


def _check_type(name: str, value: Any, hint: Any) -> None:
    flag = f"--{name.replace('_', '-')}"
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(str(c) for c in typing.get_args(hint))
            raise ValueError(f"{flag} must be one of {choices}. Received: {value!r}")
        return
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return
        hint = next(o for o in options if o is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{flag} must be a list of names. Received: {value!r}")
        return
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if hint is int and isinstance(value, bool):
        raise TypeError(f"{flag} must be an int. Received: {value!r}")
    if not isinstance(value, hint):
        raise TypeError(f"{flag} must be {hint.__name__}. Received: {value!r} ({type(value).__name__})")
