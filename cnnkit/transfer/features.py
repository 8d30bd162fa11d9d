"""Case 1 of the slides: features from the layers before the classifier, computed once, and a new classifier on them.

The features are by default the outputs of every block of the base, each
averaged over a 2x2 grid, concatenated and standardised
(:class:`cnnkit.transfer.taps.FeatureTaps`; :func:`tap_layers` says
which layer gives each block's output); ``--features last`` is the old
classifier's input alone. The backbone runs once over every image, in eval
mode and without gradients; then any classifier trains on the cached
``(N, F)`` features in seconds: a dense head trained like a network
(:func:`train_linear_head`), or a scikit-learn classifier
(:func:`fit_sklearn_head`), which is turned back into a layer so the run
stays an ordinary network that ``evaluate`` and ``predict`` can use.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnkit.runtime import Runtime
from cnnkit.transfer.config import Features
from cnnkit.transfer.freeze import Block
from cnnkit.transfer.net import KNNHead, TransferNet

if TYPE_CHECKING:
    from cnnkit.training.loop import Callback, LoopOptions

Shape = tuple[int, ...]


def layer_outputs(network: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, Shape | None]]:
    """For each named module of ``network``: how many times one pass of ``x`` ran it, and its last output's shape.

    Shapes are without the batch; None for an output without a tensor. The
    pass (:func:`cnnkit.visualize.probe.run`) runs in eval mode without
    gradients, so BatchNorm statistics do not move; every module's mode is
    restored afterwards.
    """
    from cnnkit.visualize.probe import run  # the hooked forward pass of visualize: feature maps, Grad-CAM

    with torch.no_grad():
        sequence = run(network, x).sequence
    seen: dict[str, tuple[int, Shape | None]] = {}
    for call in sequence:
        seen[call.name] = (seen.get(call.name, (0, None))[0] + 1, call.output_shape)
    return seen


def tap_layers(network: nn.Module, head: str, found: list[Block], features: Features,
               x: torch.Tensor) -> tuple[list[str], list[Shape]]:
    """The layers whose outputs ``features`` names, and their output shapes ``(C, H, W)`` or ``(F,)``; none for ``last``.

    A block's output is that of its last layer that runs exactly once per
    pass (a ReLU module shared by several blocks runs more often and has no
    single output): ``features.19`` rather than a shared ``relu``. ``x`` is
    one batch as the network takes it (after the input adapter).
    """
    if features.kind == "last":
        return [], []
    seen = layer_outputs(network, x)

    def usable(name: str) -> bool:
        count, shape = seen.get(name, (0, None))
        return count == 1 and shape is not None and len(shape) in (1, 3)

    if features.kind == "layers":
        names = list(features.layers)
        for name in names:
            if name == head or name.startswith(f"{head}.") or head.startswith(f"{name}."):
                raise ValueError(f"--features {features}: {name!r} is or holds the classifier {head!r}, which the new "
                                 f"head replaces; name layers before it")
            if name not in dict(network.named_modules()):
                near = difflib.get_close_matches(name, [n for b in found for n in b.layers], n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(near)}?" if near else ""
                raise ValueError(f"--features {features}: the base network has no layer {name!r}.{hint}")
            if not usable(name):
                count, shape = seen.get(name, (0, None))
                raise ValueError(f"--features {features}: layer {name!r} must run once per pass and output (N, C, H, W) "
                                 f"or (N, F). Received: it ran {count} times, output shape {shape}")
    else:
        if features.kind == "blocks" and features.blocks is not None and features.blocks > len(found):
            raise ValueError(f"--features {features}: the base network has {len(found)} blocks before its classifier; "
                             f"N must be 1 to {len(found)}")
        chosen = found if features.kind == "all" else found[len(found) - (features.blocks or 0):]
        names = []
        for block in chosen:
            outputs = [name for name in block.layers if usable(name)]
            if not outputs:
                raise ValueError(f"--features {features}: block {block.name} has no layer that runs once per pass with "
                                 f"an (N, C, H, W) or (N, F) output; name layers with --features LAYER,LAYER")
            names.append(outputs[-1])
    return names, [shape for name in names if (shape := seen[name][1]) is not None]  # every name is usable()


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


def train_linear_head(head: nn.Linear, train: tuple[torch.Tensor, torch.Tensor],
                      evaluation: tuple[torch.Tensor, torch.Tensor] | None, options: LoopOptions, lr: float,
                      weight_decay: float = 0.0, eval_split: str = "test",
                      callbacks: Sequence[Callback] = ()) -> list[dict[str, Any]]:
    """Train ``head`` on cached features ``(N, F)`` float32 and labels ``(N,)``; one metrics record per epoch.

    The head trains through :func:`cnnkit.training.fit`, as any network does
    (``transform=None``: the features are its inputs already), with AdamW at
    ``lr`` on a one-cycle schedule, on the CPU in float32. Records carry the
    same keys as ``metrics.jsonl`` of a training run. Ctrl-C stops it with
    ``KeyboardInterrupt``.
    """
    from cnnkit.runtime import choose
    from cnnkit.tasks import Classify
    from cnnkit.training.loop import TrainState, fit, steps_per_epoch
    from cnnkit.training.optim import AdamW, Schedule, make_scheduler, parameter_groups

    steps = steps_per_epoch(len(train[1]), options.batch_size)
    optimizer = AdamW(parameter_groups(head, weight_decay), lr=lr)
    scheduler = make_scheduler(optimizer, Schedule("onecycle", options.epochs), steps)
    state = TrainState(head, optimizer, scheduler, options, choose("cpu", "fp32", False), steps)
    fit(state, train, evaluation, None, Classify(), eval_split=eval_split, callbacks=callbacks)
    if state.stop_reason == "interrupted":
        raise KeyboardInterrupt
    head.eval()
    return state.history


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
