"""Case 1 of the slides: features from the layers before the classifier, computed once, and a new classifier on them.

The backbone runs once over every image, in eval mode and without gradients;
then any classifier trains on the cached ``(N, F)`` features in seconds: a
dense head trained like a network (:func:`train_linear_head`), or a
scikit-learn classifier (:func:`fit_sklearn_head`), which is turned back into
a layer so the run stays an ordinary network that ``evaluate`` and
``predict`` can use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models.transfer_net import KNNHead, TransferNet
from cnnkit.training.config import TrainConfig
from cnnkit.training.hardware import Runtime
from cnnkit.training.loop import seed_for
from cnnkit.training.optim import make_optimizer, make_scheduler


def extract_features(net: TransferNet, images: torch.Tensor, runtime: Runtime, batch_size: int = 64,
                     report: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """What ``net``'s head would see for each image: ``(N, C, H, W) uint8 -> (N, F) float32`` on the CPU.

    The network runs in eval mode (BatchNorm uses its running statistics,
    dropout is off) under the run's precision; ``report(done, total)`` is
    called after every batch.
    """
    was_training = net.training
    net.eval()
    outputs = []
    try:
        with torch.no_grad(), runtime.autocast(), net.headless():
            for start in range(0, images.shape[0], batch_size):
                x = images[start:start + batch_size].to(runtime.device).float().div_(255.0)  # (B, C, H, W) in [0, 1]
                if runtime.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                outputs.append(net(x).float().cpu())  # (B, F)
                if report is not None:
                    report(min(start + batch_size, images.shape[0]), images.shape[0])
    finally:
        net.train(was_training)
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def _evaluate(head: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = head(features)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def train_linear_head(head: nn.Linear, train: tuple[torch.Tensor, torch.Tensor],
                      evaluation: tuple[torch.Tensor, torch.Tensor] | None, config: TrainConfig, eval_split: str = "test",
                      on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train ``head`` on cached features ``(N, F)`` float32 and labels ``(N,)``; one metrics record per epoch.

    The optimizer, schedule, label smoothing, batch size and epochs come from
    ``config`` (as :func:`cnnkit.training.fit` uses them), and every shuffle
    is seeded by ``(config.seed, epoch)``. Records carry the same keys as
    ``metrics.jsonl`` of a training run.
    """
    features, labels = train
    steps = math.ceil(len(labels) / config.batch_size)
    optimizer = make_optimizer(head, config)
    scheduler = make_scheduler(optimizer, config, steps)
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    for epoch in range(config.epochs):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed_for(config.seed, epoch, -1)))
        loss_sum, correct = 0.0, 0
        head.train()
        for start in range(0, len(labels), config.batch_size):
            index = order[start:start + config.batch_size]
            logits = head(features[index])  # (B, classes)
            loss = F.cross_entropy(logits, labels[index], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(index)
            correct += int((logits.argmax(1) == labels[index]).sum())
        head.eval()
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / len(labels),
                                  "train_accuracy": correct / len(labels), "lr": optimizer.param_groups[0]["lr"]}
        if evaluation is not None:
            record[f"{eval_split}_loss"], record[f"{eval_split}_accuracy"] = _evaluate(head, *evaluation)
        record["time"] = time.perf_counter() - started
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history


def _linear_from(coef: Any, intercept: Any, mean: Any, scale: Any, num_classes: int) -> nn.Linear:
    """A dense layer computing ``coef @ ((x - mean) / scale) + intercept``: scaler and linear model folded into one.

    Two classes: scikit-learn keeps one row (the score of class 1); the layer
    gets a zero row for class 0, so softmax gives the logistic sigmoid.
    """
    w = torch.as_tensor(coef, dtype=torch.float64) / torch.as_tensor(scale, dtype=torch.float64)  # (K or 1, F)
    b = torch.as_tensor(intercept, dtype=torch.float64) - w @ torch.as_tensor(mean, dtype=torch.float64)
    if w.shape[0] == 1 and num_classes == 2:
        w, b = torch.cat([torch.zeros_like(w), w]), torch.cat([torch.zeros_like(b), b])
    layer = nn.Linear(w.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.copy_(w.float())
        layer.bias.copy_(b.float())
    return layer


def fit_sklearn_head(kind: str, features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 5,
                     seed: int = 0) -> nn.Module:
    """A scikit-learn classifier fitted on ``(N, F)`` features, returned as a layer that computes the same thing.

    - ``logistic``: standardised features, multinomial ``LogisticRegression``
      (L2, C=1) -> an ``nn.Linear`` with the scaler folded in; softmax of its
      output is ``predict_proba``.
    - ``svm``: standardised features, ``LinearSVC`` (one-vs-rest, C=1) -> an
      ``nn.Linear`` whose outputs are the decision values (argmax = ``predict``;
      softmax of them is a score, not a calibrated probability).
    - ``knn``: ``KNeighborsClassifier(k)`` on the raw features -> a
      :class:`KNNHead` holding them.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    x, y = features.double().numpy(), labels.numpy()
    if kind == "knn":
        KNeighborsClassifier(n_neighbors=k).fit(x, y)  # checks k against the sample count as scikit-learn does
        return KNNHead(features, labels, num_classes, k)
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    if kind == "logistic":
        model: Any = LogisticRegression(C=1.0, max_iter=3000, random_state=seed).fit(z, y)
    elif kind == "svm":
        model = LinearSVC(C=1.0, max_iter=20000, random_state=seed).fit(z, y)
    else:
        raise ValueError(f"--classifier must be linear, logistic, svm or knn. Received: {kind!r}")
    if list(model.classes_) != list(range(num_classes)):
        raise ValueError(f"--classifier {kind}: the training features hold classes {list(model.classes_)}, not all "
                         f"{num_classes}; every class needs training images")
    return _linear_from(model.coef_, model.intercept_, scaler.mean_, scaler.scale_, num_classes)
