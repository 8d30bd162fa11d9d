"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017): which peak
rate to train with, read from one short pass instead of many runs.

From the network's initial weights, mini-batches are trained with a rate that grows geometrically from ``start``
to ``end``, ``lr_i = start * (end / start) ** (i / (steps - 1))``, and the training loss is recorded after each.
The curve is smoothed by an exponential moving average (``beta`` 0.98, bias-corrected, as fast.ai does), and the
test stops early once the smoothed loss exceeds four times its best or is no longer finite (the rate is then far
too high). Two readings are suggested:

- ``steepest``: the rate where the smoothed loss falls fastest against ``log(lr)``: the loss still drops, and
  quickly, so the network learns at that rate;
- ``minimum / 10``: a tenth of the rate at the lowest smoothed loss, a rule of thumb that stays clear of the
  divergence just beyond it.

Everything else (data, network, optimizer, batch size, precision, augmentation) is what ``cnnkit train`` would use
with the same options; nothing is written but the figure. ``cnnkit lr-find --model lenet5 --data fashion-mnist``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnkit.data import batches
from cnnkit.tasks.base import layout
from cnnkit.training.config import TrainConfig
from cnnkit.training.optim import make_optimizer
from cnnkit.training.run import place_and_runtime, prepare

BETA = 0.98  # the smoothing of the loss curve
DIVERGED = 4.0  # stop once the smoothed loss exceeds this many times its best


@dataclass
class RangeTest:
    """The rates tried, the raw and smoothed losses after each, and the suggested rates."""

    rates: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    diverged: bool = False  # stopped before ``end`` because the loss blew up
    steepest: float | None = None
    minimum_tenth: float | None = None

    def suggest(self) -> None:
        """Fill :attr:`steepest` and :attr:`minimum_tenth` from the smoothed curve (module doc)."""
        if len(self.smoothed) < 3:
            return
        logs = [math.log(rate) for rate in self.rates]
        slopes = [(self.smoothed[i + 1] - self.smoothed[i - 1]) / (logs[i + 1] - logs[i - 1])
                  for i in range(1, len(self.smoothed) - 1)]
        self.steepest = self.rates[1 + min(range(len(slopes)), key=slopes.__getitem__)]
        self.minimum_tenth = self.rates[min(range(len(self.smoothed)), key=self.smoothed.__getitem__)] / 10

    def as_dict(self) -> dict[str, Any]:
        return {"rates": self.rates, "losses": self.losses, "smoothed": self.smoothed, "diverged": self.diverged,
                "suggested": {"steepest": self.steepest, "minimum_tenth": self.minimum_tenth}}


def rates(start: float, end: float, steps: int) -> list[float]:
    """``steps`` rates from ``start`` to ``end``, evenly spaced on a log scale.

    >>> [f"{r:g}" for r in rates(1e-4, 1.0, 5)]
    ['0.0001', '0.001', '0.01', '0.1', '1']
    """
    if not (0 < start < end) or steps < 3:
        raise ValueError(f"--start and --end must satisfy 0 < start < end, and --steps be at least 3. Received: "
                         f"start={start}, end={end}, steps={steps}")
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def find_lr(config: TrainConfig, start: float = 1e-7, end: float = 10.0, steps: int = 100) -> RangeTest:
    """Run the range test for ``config``'s network, data and optimizer (module doc); the training set is cycled
    if it has fewer than ``steps`` batches."""
    tried = rates(start, end, steps)
    _, runtime = place_and_runtime(config)
    ready = prepare(config, runtime)
    task, model, transform, train_set = ready.task, ready.model, ready.transform, ready.splits.train
    targets = task.targets(train_set)
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    result = RangeTest()
    average, best = 0.0, math.inf
    model.train()
    stream: Iterator[tuple[torch.Tensor, ...]] = iter(())
    for step, rate in enumerate(tried):
        batch = next(stream, None)
        if batch is None:  # the training set is cycled when it has fewer batches than steps
            stream = iter(batches((train_set.images, targets), config.batch_size, shuffle=True, generator=generator))
            batch = next(stream)
        images, y = batch
        x, y = task.prepare(images.to(runtime.device), y.to(runtime.device), transform, generator)
        for group in optimizer.param_groups:
            group["lr"] = rate
        with runtime.autocast():
            loss = task.loss(model(layout(x, runtime)), y, config.label_smoothing)
        value = float(loss.detach())
        if not math.isfinite(value):
            result.diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        average = BETA * average + (1 - BETA) * value
        smoothed = average / (1 - BETA ** (step + 1))
        result.rates.append(rate)
        result.losses.append(value)
        result.smoothed.append(smoothed)
        best = min(best, smoothed)
        if smoothed > DIVERGED * best:
            result.diverged = True
            break
    result.suggest()
    return result


def draw(result: RangeTest, path: Path, title: str) -> Path:
    """The curve on a log-rate axis, with the two suggestions marked; a PNG at ``path``."""
    from cnnkit.visualize.plot import pyplot, save_png

    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(result.rates, result.losses, color="#bbbbbb", linewidth=0.8, label="loss per batch")
    ax.plot(result.rates, result.smoothed, color="#1f77b4", linewidth=1.8, label=f"smoothed (EMA, beta {BETA})")
    for rate, colour, name in ((result.steepest, "#d62728", "steepest descent"),
                               (result.minimum_tenth, "#2ca02c", "minimum / 10")):
        if rate is not None:
            ax.axvline(rate, color=colour, linestyle="--", linewidth=1.2, label=f"{name}: {rate:.2g}")
    ax.set_xscale("log")
    # plain labels ("1e-05", "0.01"): math text is off in cnnkit's figures (user names may hold "$")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    if result.smoothed:  # the blow-up at the end would flatten the rest of the curve
        top = max(result.smoothed[0], min(result.smoothed)) * 1.5
        ax.set_ylim(0, max(top, 1e-6))
    ax.set_title(title + (" (stopped: the loss diverged)" if result.diverged else ""))
    ax.legend(loc="upper left", fontsize=8)
    return save_png(fig, path)
