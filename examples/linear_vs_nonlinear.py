"""Linear and non-linear separability, measured: why a network needs its activation functions.

Three classifiers on 2-D points, trained the same way (full-batch Adam on cross-entropy):

- ``linear``: one dense layer, ``2 -> 2``: its decision boundary is a straight line;
- ``deep linear``: ``2 -> 16 -> 16 -> 2`` with no activation: a product of matrices is one matrix, so it
  still draws a straight line, however deep;
- ``relu``: the same layers with ReLU between them: the boundary bends.

On two data sets that no line separates (scikit-learn's ``make_circles`` and ``make_moons``) and one that a line
does (``make_blobs``), each model's test accuracy is printed and its decision regions are drawn::

    python examples/linear_vs_nonlinear.py [--points 600] [--steps 600] [--out FIGURE]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.model_selection import train_test_split
from torch import nn

from cnnkit.cli import figure_file, whole_number
from cnnkit.explain.panels import pyplot, save_figure

DATASETS = ("circles", "moons", "blobs")
MODELS = ("linear", "deep linear", "relu")


@dataclass(frozen=True)
class Config:
    points: int = 600  # half to train on, half to test
    noise: float = 0.1
    steps: int = 600  # full-batch Adam steps
    lr: float = 0.02
    hidden: int = 16
    seed: int = 0


def make_data(name: str, points: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(points, 2)`` float32 coordinates, standardised, and their 0/1 labels."""
    if name == "circles":
        x, y = make_circles(points, noise=noise, factor=0.5, random_state=seed)
    elif name == "moons":
        x, y = make_moons(points, noise=noise, random_state=seed)
    elif name == "blobs":
        x, y = make_blobs(points, centers=[(-2, -1), (2, 1)], cluster_std=1.0, random_state=seed)
    else:
        raise ValueError(f"`name` must be one of {', '.join(DATASETS)}. Received: name={name!r}")
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32), y.astype(np.int64)


def build(kind: str, hidden: int = Config.hidden) -> nn.Module:
    """``linear``, ``deep linear`` (no activation) or ``relu``: ``(N, 2) -> (N, 2)`` class scores."""
    if kind == "linear":
        return nn.Linear(2, 2)
    if kind == "deep linear":
        return nn.Sequential(nn.Linear(2, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 2))
    if kind == "relu":
        return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    raise ValueError(f"`kind` must be one of {', '.join(MODELS)}. Received: kind={kind!r}")


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> nn.Module:
    """Full-batch Adam on cross-entropy, ``steps`` times."""
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The predicted class of each point."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).argmax(1).numpy()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(model, x) == y).mean())


def decision_grid(model: nn.Module, low: float, high: float, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, classes)``: the predicted class at every point of a ``resolution x resolution`` grid over the square."""
    xs, ys = np.meshgrid(np.linspace(low, high, resolution), np.linspace(low, high, resolution))
    classes = predict(model, np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(xs.shape)
    return xs, ys, classes


def run(config: Config) -> dict[str, dict[str, tuple[nn.Module, float, float]]]:
    """Every model on every data set: ``results[data][model] = (model, train accuracy, test accuracy)``."""
    results: dict[str, dict[str, tuple[nn.Module, float, float]]] = {}
    for name in DATASETS:
        x, y = make_data(name, config.points, config.noise, config.seed)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=config.seed, stratify=y)
        results[name] = {}
        for kind in MODELS:
            torch.manual_seed(config.seed)
            model = fit(build(kind, config.hidden), x_train, y_train, config.steps, config.lr)
            results[name][kind] = (model, accuracy(model, x_train, y_train), accuracy(model, x_test, y_test))
    return results


def draw(config: Config, results: dict[str, dict[str, tuple[nn.Module, float, float]]], path: Path) -> Path:
    """One row per data set, one column per model: the decision regions and the test points."""
    plt = pyplot()
    fig, axes = plt.subplots(len(DATASETS), len(MODELS), figsize=(10, 10), layout="constrained")
    for row, name in enumerate(DATASETS):
        x, y = make_data(name, config.points, config.noise, config.seed)
        _, x_test, _, y_test = train_test_split(x, y, test_size=0.5, random_state=config.seed, stratify=y)
        for col, kind in enumerate(MODELS):
            model, _, test = results[name][kind]
            ax = axes[row, col]
            xs, ys, classes = decision_grid(model, float(x.min()) - 0.3, float(x.max()) + 0.3)
            ax.contourf(xs, ys, classes, levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fdd0a2"])
            ax.scatter(x_test[:, 0], x_test[:, 1], c=np.where(y_test == 1, "#e6550d", "#3182bd"), s=8)
            ax.set_title(f"{name}: {kind}, test accuracy {test:.1%}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("decision regions: a line, however many linear layers; a bent boundary with ReLU", fontsize=11)
    return save_figure(fig, path, "out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=whole_number(20), default=Config.points)
    parser.add_argument("--steps", type=whole_number(1), default=Config.steps)
    parser.add_argument("--seed", type=whole_number(0), default=Config.seed)
    parser.add_argument("--out", type=figure_file("out"), default="demo-separability.png", help="the figure, PNG or SVG")
    args = parser.parse_args()
    config = Config(points=args.points, steps=args.steps, seed=args.seed)
    start = time.perf_counter()
    torch.set_num_threads(1)  # full batches of a few hundred points: threads only add wake-ups

    results = run(config)
    print(f"{config}\n")
    print(f"{'data':8s} {'model':12s} {'train':>8s} {'test':>8s}")
    for name, row in results.items():
        for kind, (_, train, test) in row.items():
            print(f"{name:8s} {kind:12s} {train:8.1%} {test:8.1%}")
    written = draw(config, results, Path(args.out))
    print(f"\nwrote {written}; {time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
