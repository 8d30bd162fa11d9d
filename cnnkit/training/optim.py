"""Optimizers and learning-rate schedules: the optimizer from a :class:`TrainConfig`, the schedule from a :class:`Schedule`.

Schedules are stepped once per batch and defined over the whole run
(``epochs * steps_per_epoch``), so they can be rebuilt on resume.

The optimizers are PyTorch's own classes (:data:`SGD` ... :data:`AdamW`), each with the
same arithmetic, state and ``state_dict`` format, less one thing eager
training never uses: every ``torch.optim`` object calls through wrappers that
import the compiler stack (``torch._dynamo``, SymPy) on first use, so that
``torch.compile`` can trace around them. That import took 1.0-1.3 s of every
``cnnkit train`` on an AMD EPYC with AVX512-BF16 and 2.1 s on one without
(``docs/benchmarks.md``), before the first step. :func:`eager` calls the
wrapped functions directly instead; a run that compiles its network
(``--compile``) imports the stack anyway and loses nothing.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from cnnkit.training.config import TrainConfig

OptimizerType = TypeVar("OptimizerType", bound=torch.optim.Optimizer)
# the Optimizer methods that torch wraps with a lazy `import torch._dynamo` (torch._disable_dynamo)
_HOOKED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def eager(base: type[OptimizerType]) -> type[OptimizerType]:
    """``base`` (a ``torch.optim`` class) calling its own step and bookkeeping without the compiler's wrappers.

    The result is a subclass of ``base``: same constructor, same update, same ``state_dict``; a checkpoint of
    one loads into the other. Where this PyTorch does not expose the wrapped functions (``__wrapped__``), the
    result is ``base`` itself, unchanged.
    """
    raw = {name: getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None) for name in _HOOKED}
    # every wrapper down to the class's own step: torch also wraps it for the profiler once an object of the class
    # exists, whoever built that object first
    raw_step: Callable[..., Any] = inspect.unwrap(base.step)
    if raw_step is base.step or any(function is None for function in raw.values()):
        return base

    @functools.wraps(raw_step)
    def step(self: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        previous = torch.is_grad_enabled()
        torch.set_grad_enabled(bool(self.defaults["differentiable"]))  # what torch's step wrapper does
        try:
            return raw_step(self, *args, **kwargs)
        finally:
            torch.set_grad_enabled(previous)

    methods: dict[str, Any] = {name: function for name, function in raw.items()}
    doc = f"``torch.optim.{base.__name__}`` without the compiler's wrappers (:func:`eager`); its arguments are that class's."
    methods.update(step=step, __doc__=doc, __module__=__name__, __qualname__=base.__name__)
    return type(base.__name__, (base,), methods)


SGD = eager(torch.optim.SGD)
Adagrad = eager(torch.optim.Adagrad)
RMSprop = eager(torch.optim.RMSprop)
Adam = eager(torch.optim.Adam)
AdamW = eager(torch.optim.AdamW)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Trainable parameters; biases and normalisation scales get no weight decay (they are not weights)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters: everything is frozen")
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), AdaGrad, RMSprop, Adam or AdamW at ``config.learning_rate``."""
    groups = parameter_groups(model, config.weight_decay)
    lr = config.learning_rate
    # one fused kernel per step instead of several small ops per parameter: same arithmetic, measured ~10% faster
    # training for LeNet-5 at batch 32 on the CPU (where PyTorch's default is the per-parameter loop)
    devices = {p.device.type for group in groups for p in group["params"]}  # type: ignore[attr-defined]
    fused = devices <= {"cpu", "cuda"}
    if config.optimizer == "sgd":
        return SGD(groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov, fused=fused)
    if config.optimizer == "adagrad":
        return Adagrad(groups, lr=lr, fused=fused)
    if config.optimizer == "rmsprop":
        return RMSprop(groups, lr=lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return Adam(groups, lr=lr, fused=fused)
    return AdamW(groups, lr=lr, fused=fused)


@dataclass(frozen=True)
class Schedule:
    """The learning rate over a run, as a multiplier of the peak rate: what :func:`lr_factor` reads."""

    kind: str = "onecycle"  # constant, step, cosine or onecycle
    epochs: int = 1  # the run's length: the schedule spans epochs * steps_per_epoch steps
    warmup_epochs: float = 0.0  # linear warm-up from 0
    step_epochs: int = 1  # kind "step": multiply by step_gamma every this many epochs
    step_gamma: float = 0.5


def lr_factor(step: int, config: Schedule, steps_per_epoch: int) -> float:
    """Multiplier of the peak rate at global step ``step`` (0-based): warm-up, then the schedule.

    >>> [round(lr_factor(s, Schedule("cosine", epochs=2), 2), 3) for s in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    """
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if config.kind == "constant":
        return 1.0
    if config.kind == "step":
        return float(config.step_gamma ** ((step // steps_per_epoch) // config.step_epochs))
    progress = (step - warmup) / max(total - warmup, 1)
    if config.kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    # one-cycle without explicit warm-up: rise for the first 25%, then anneal (cosine) to near zero
    if warmup == 0:
        rise = max(round(0.25 * total), 1)
        if step < rise:
            return 0.04 + 0.96 * step / rise
        progress = (step - rise) / max(total - rise, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * 0.9999 + 1e-4


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-batch scheduler of ``optimizer``'s rates over ``schedule.epochs * steps_per_epoch`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule, steps_per_epoch))
