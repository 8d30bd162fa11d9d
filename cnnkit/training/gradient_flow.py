"""The vanishing gradient, measured: each layer's gradient norm in a deep plain network and in the same network
with skip connections, at initialisation and after a short training run.

For every weighted layer (convolution, dense) the number is ``||dL/dW||``, the
L2 norm of the gradient of the cross-entropy ``L`` with respect to its weight,
on one fixed batch of real images (the *measurement batch*), with the network
in training mode, as an optimizer step would see it. It is measured twice:
with the initial weights, and after ``steps`` steps of SGD with momentum on a
few thousand images of the same dataset. Both networks start from the same
seed; ``plain_deep`` and ``residual_deep`` then start from the same weights,
and only the skips differ.

The training is a plain PyTorch loop over a :func:`cnnkit.data.load` dataset
(normalised with its channel statistics, no augmentation, fp32), not
:func:`cnnkit.training.fit`: the numbers must be exactly those of
``torch.autograd`` on the stated network and batch, so no mixed precision,
channels-last or schedule may come between, and ``fit`` has no hook between the
backward pass and the optimizer step.

    >>> result = measure(GradientFlowConfig(data="digits", depth=8, steps=2, images=128, measure_images=32))
    >>> [net.name for net in result.networks], result.factor(1) > 10  # residual_deep's first layer: 10x more
    (['plain_deep', 'residual_deep'], True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.training.optim import SGD

DEFAULT_MODELS = ("plain_deep", "residual_deep")


@dataclass(frozen=True)
class GradientFlowConfig:
    """What ``cnnkit explain gradients`` measures; every field is a flag of the same name."""

    models: tuple[str, ...] = DEFAULT_MODELS  # zoo classifiers to compare; the factor is each one against the first
    data: str = "fashion-mnist"  # a classification dataset (cnnkit.data.load)
    depth: int | None = None  # passed to every model that has a `depth` option (6n + 2); None: their defaults
    batch_norm: bool = False  # passed as batch_norm=True to models that have the option
    steps: int = 50  # SGD steps between the two measurements
    batch_size: int = 64  # images per step
    images: int = 3200  # training images drawn from the dataset (a seeded draw); cycled when steps need more
    measure_images: int = 256  # the measurement batch: the first images of the draw, the same at both times
    lr: float = 0.02  # SGD learning rate
    momentum: float = 0.9
    seed: int = 0  # weights, the draw of images and the order of the batches

    def check(self) -> None:
        """``ValueError`` naming the flag and the received value for anything out of range."""
        positive = {"steps": self.steps, "batch-size": self.batch_size, "images": self.images,
                    "measure-images": self.measure_images}
        for flag, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{flag} must be a positive int. Received: --{flag} {value!r}")
        if self.measure_images > self.images:
            raise ValueError(f"--measure-images must be at most --images ({self.images}): the measurement batch is "
                             f"drawn from the training images. Received: --measure-images {self.measure_images}")
        if not (isinstance(self.lr, int | float) and 0 < self.lr < 10 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be a positive number below 10. Received: --lr {self.lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"--seed must be a non-negative int. Received: --seed {self.seed!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1). Received: --momentum {self.momentum!r}")
        if not self.models:
            raise ValueError("--model: name at least one zoo classifier. Received: none")


@dataclass(frozen=True)
class LayerGradient:
    """One weighted layer's gradient norm at the two measurements."""

    name: str  # the module's path, e.g. "layer1.0.conv1"
    type: str  # "Conv2d" or "Linear"
    init: float  # ||dL/dW|| with the initial weights
    trained: float  # ||dL/dW|| after the training steps


@dataclass
class NetworkGradients:
    """One network's measurements; ``model`` is the trained network (not in the JSON)."""

    name: str
    options: dict[str, Any]
    params: int
    layers: list[LayerGradient]
    loss_init: float  # cross-entropy on the measurement batch
    loss_trained: float
    train_losses: list[float]  # one per step, on that step's batch
    seconds: float
    model: nn.Module | None = field(default=None, repr=False)

    def first_to_last(self, trained: bool = False) -> float:
        """The first layer's gradient norm over the last layer's: near 1 healthy, tiny where it vanished."""
        values = [layer.trained if trained else layer.init for layer in self.layers]
        return values[0] / values[-1] if values[-1] else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.name, "options": self.options, "params": self.params,
                "layers": [asdict(layer) for layer in self.layers], "loss_init": self.loss_init,
                "loss_trained": self.loss_trained, "train_losses": self.train_losses, "seconds": round(self.seconds, 2),
                "first_to_last_init": self.first_to_last(), "first_to_last_trained": self.first_to_last(trained=True)}


@dataclass
class GradientFlow:
    """The measurements of every network, and how the first layer's gradient compares between them."""

    config: GradientFlowConfig
    input_shape: tuple[int, ...]
    networks: list[NetworkGradients]

    def factor(self, index: int, trained: bool = False) -> float:
        """Network ``index``'s first-layer gradient norm over the first network's (the plain one's)."""
        first = [net.layers[0].trained if trained else net.layers[0].init for net in (self.networks[0], self.networks[index])]
        return first[1] / first[0] if first[0] else math.inf

    def as_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["models"] = list(self.config.models)
        return {"config": config, "input_shape": list(self.input_shape),
                "networks": [net.as_dict() for net in self.networks],
                "first_layer_factor": [{"model": net.name, "against": self.networks[0].name,
                                        "init": self.factor(i), "trained": self.factor(i, trained=True)}
                                       for i, net in enumerate(self.networks) if i > 0]}


def layer_gradient_norms(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[list[tuple[str, str, float]], float]:
    """``([(name, type, ||dL/dW||), ...], L)`` for every Conv2d / Linear of ``model``, in module order.

    ``L`` is the mean cross-entropy of ``model(images)`` (``(N, C, H, W)``
    float) against ``labels`` (``(N,)`` int64), in the model's current mode.
    The model's ``.grad`` fields are left as they were.
    """
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d | nn.Linear)]
    loss = F.cross_entropy(model(images), labels)
    grads = torch.autograd.grad(loss, [module.weight for _, module in layers])
    norms = [(name, type(module).__name__, float(grad.norm())) for (name, module), grad in zip(layers, grads, strict=True)]
    return norms, float(loss.detach())


def training_images(config: GradientFlowConfig) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(x, y, classes)``: ``config.images`` training images of ``config.data`` (a seeded draw), normalised float.

    ``x`` is ``(images, C, H, W)`` float32 normalised with the draw's own channel
    statistics; its first ``measure_images`` are the measurement batch.
    """
    from cnnkit.data import channel_stats, load, normalize, to_float

    splits = load(config.data, seed=config.seed)
    train = splits.train
    if train.kind != "classification":
        raise ValueError(f"--data must be a classification dataset (one class per image). Received: --data {config.data}")
    if config.images > len(train.labels):
        raise ValueError(f"--images: {config.data} has {len(train.labels):,} training images. "
                         f"Received: --images {config.images}")
    order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(config.seed))[: config.images]
    pixels = train.images[order]
    x = normalize(to_float(pixels), *channel_stats(pixels))  # (images, C, H, W)
    return x, train.labels[order], train.num_classes


def _options(name: str, config: GradientFlowConfig) -> dict[str, Any]:
    """The model options the flags ask for; a flag the model cannot take is an error naming both."""
    from cnnkit import models

    known = models.info(name).options
    options: dict[str, Any] = {}
    for flag, key, value in (("--depth", "depth", config.depth), ("--batch-norm", "batch_norm", config.batch_norm or None)):
        if value is None:
            continue
        if key not in known:
            raise ValueError(f"{flag}: model {name} has no `{key}` option (its options: {', '.join(known) or 'none'}). "
                             f"Received: {flag} {value} with --model {name}")
        options[key] = value
    return options


def _check_model(name: str) -> None:
    from cnnkit import models

    try:
        kind = models.info(name).kind
    except ValueError as error:  # an unknown name: the registry suggests the nearest ones
        raise ValueError(f"--model: {error}") from None
    if kind != "classification":
        raise ValueError(f"--model must be a classification network (cnnkit models). Received: --model {name} ({kind})")


def _network(name: str, config: GradientFlowConfig, shape: tuple[int, ...], classes: int) -> tuple[nn.Module, dict[str, Any]]:
    from cnnkit import models

    info = models.info(name)
    options = _options(name, config)
    built = dict(options)
    if "input_size" in info.options:
        built["input_size"] = shape[1:]
    torch.manual_seed(config.seed)  # the same initial weights for networks of the same layers
    return models.create(name, num_classes=classes, in_channels=shape[0], **built), options


def _train_and_measure(name: str, config: GradientFlowConfig, x: torch.Tensor, y: torch.Tensor,
                       classes: int) -> NetworkGradients:
    clock = time.perf_counter()
    model, options = _network(name, config, tuple(x.shape[1:]), classes)
    model.train()
    probe_x, probe_y = x[: config.measure_images], y[: config.measure_images]
    # 1. the gradient of every layer with the initial weights
    before, loss_init = layer_gradient_norms(model, probe_x, probe_y)
    # 2. a short training run: SGD with momentum over shuffled batches of the drawn images
    optimizer = SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    shuffle = torch.Generator().manual_seed(config.seed + 1)
    order = torch.randperm(len(y), generator=shuffle)
    losses = []
    for step in range(config.steps):
        start = step * config.batch_size % len(y)
        if start + config.batch_size > len(y):  # a new pass over the images, in a new order
            order, start = torch.randperm(len(y), generator=shuffle), 0
        batch = order[start : start + config.batch_size]
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise ValueError(f"{name}: the training loss became {losses[-1]} at step {step + 1}; try a smaller --lr. "
                             f"Received: --lr {config.lr}")
    # 3. the same layers' gradients, on the same batch, with the trained weights
    after, loss_trained = layer_gradient_norms(model, probe_x, probe_y)
    layers = [LayerGradient(n, t, g0, g1) for (n, t, g0), (_, _, g1) in zip(before, after, strict=True)]
    params = sum(p.numel() for p in model.parameters())
    return NetworkGradients(name, options, params, layers, loss_init, loss_trained, losses,
                            time.perf_counter() - clock, model)


def measure(config: GradientFlowConfig = GradientFlowConfig()) -> GradientFlow:
    """Measure every network of ``config`` (module doc): gradient norms per layer, before and after training."""
    config.check()
    for name in config.models:  # every flag checked before the data loads
        _check_model(name)
        _options(name, config)
    x, y, classes = training_images(config)
    networks = [_train_and_measure(name, config, x, y, classes) for name in config.models]
    return GradientFlow(config, tuple(x.shape[1:]), networks)


def _short(value: float) -> str:
    return f"{value:.2e}" if value and (abs(value) < 0.01 or abs(value) >= 1000) else f"{value:.3f}"


def render(result: GradientFlow) -> str:
    """The per-layer table, each network's first-to-last ratio, and the first layer's factor between networks."""
    config, nets = result.config, result.networks
    after = f"{config.steps} steps"
    lines = [f"Gradient norm ||dL/dW|| per layer: cross-entropy on the same {config.measure_images} {config.data} images "
             f"({'x'.join(map(str, result.input_shape))}), training mode; at initialisation and after {after} of SGD "
             f"(lr {config.lr:g}, momentum {config.momentum:g}, batch {config.batch_size}) on {config.images:,} images.", ""]
    width = max(len(layer.name) for net in nets for layer in net.layers) + 2
    lines.append("layer".ljust(width) + "".join(f"{net.name + ' init':>22}{net.name + ' after':>22}" for net in nets))
    for index in range(max(len(net.layers) for net in nets)):
        names = {net.layers[index].name for net in nets if index < len(net.layers)}
        cells = "".join(f"{_short(net.layers[index].init):>22}{_short(net.layers[index].trained):>22}"
                        if index < len(net.layers) else " " * 44 for net in nets)
        lines.append(("/".join(sorted(names))).ljust(width) + cells)
    lines.append("")
    for net in nets:
        lines.append(f"{net.name} ({net.params:,} parameters, {len(net.layers)} weighted layers): first layer / last "
                     f"layer = {_short(net.first_to_last())} at initialisation, {_short(net.first_to_last(True))} after "
                     f"{after}; loss {net.loss_init:.3f} -> {net.loss_trained:.3f} on the measurement batch.")
    for index, net in enumerate(nets[1:], start=1):
        lines.append(f"The first layer ({net.layers[0].name}) of {net.name} gets a gradient {result.factor(index):.3g} "
                     f"times that of {nets[0].name} at initialisation, {result.factor(index, True):.3g} times after "
                     f"{after}.")
    if [net.name for net in nets] == list(DEFAULT_MODELS):
        lines.append("Same seed, same initial weights: only the skip connections differ.")
        if result.factor(1) >= 10:
            lines.append("Through the plain network each layer scales the gradient down on its way back, so its first "
                         "layers barely learn: the vanishing gradient; a skip passes the gradient on unchanged.")
        elif config.batch_norm:
            lines.append("Here the plain network's first layer is not starved of gradient: batch norm rescales every "
                         "layer's signal, the cure the plain networks of He et al. (2015) relied on.")
    return "\n".join(lines)


def model_names(text: Sequence[str] | None) -> tuple[str, ...]:
    """The ``--model`` flags given, or the default pair."""
    return tuple(text) if text else DEFAULT_MODELS
