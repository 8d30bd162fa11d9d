"""A network reused for new classes: input adapter + pretrained network with a new head.

:class:`TransferNet` is what ``cnnkit transfer`` trains and saves. It holds
the base network whole, with its classifier (the last dense layer called in
the forward pass) replaced by a new head, behind an :class:`InputAdapter`
that turns the new data into what the base expects::

    (N, C, H, W) pixels in [0, 1] --adapter--> (N, 3, 224, 224) normalised --base, new head--> (N, classes)

With :class:`~cnnkit.transfer.taps.FeatureTaps` (``taps``), the head
reads pooled, standardised outputs of several layers instead of its own input
(``cnnkit transfer --strategy extract --features all``)::

    ... --base, outputs of taps.layers pooled--> (N, F) --taps: standardise--> (N, F) --new head--> (N, classes)

Everything a trained TransferNet needs is in its state dict and in the
JSON description :func:`rebuild` reads, so a run directory can be rebuilt
without the pretrained weight file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.transfer.taps import FeatureTaps, tapping

# ITU-R 601-2 luma, as cnnkit.data.convert uses for grey images
_LUMA = (0.299, 0.587, 0.114)


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule at dotted path ``name`` (``"layer4.1.conv2"``); ``ValueError`` naming the path otherwise."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"{type(model).__name__} has no layer {name!r}") from None


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` at dotted path ``name`` in ``model``, in place of what is there."""
    parent_name, _, child = name.rpartition(".")
    parent = get_module(model, parent_name) if parent_name else model
    setattr(parent, child, module)


def find_classifier(model: nn.Module, input_shape: Sequence[int]) -> str:
    """Dotted name of ``model``'s classifier: the last layer with weights that its forward pass calls.

    One pass of a zero image of ``input_shape`` ``(C, H, W)`` decides, so the
    answer follows what the network does, not the order its layers were
    declared in. The classifier must be an ``nn.Linear``; anything else is a
    ``ValueError`` naming the layer found.
    """
    names = {id(module): name for name, module in model.named_modules()}
    called: list[nn.Module] = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        called.append(module)

    leaves = [m for m in model.modules() if next(m.children(), None) is None and next(m.parameters(), None) is not None]
    handles = [m.register_forward_hook(record) for m in leaves]
    modes = {m: m.training for m in model.modules()}
    first = next(model.parameters(), None)
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=first.device if first is not None else "cpu"))
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.train(mode)
    if not called:
        raise ValueError(f"{type(model).__name__} has no layer with weights: nothing to transfer")
    last = called[-1]
    if not isinstance(last, nn.Linear):
        raise ValueError(f"{type(model).__name__} ends in {names[id(last)]!r} ({type(last).__name__}), not in a dense "
                         f"classifier (nn.Linear): cnnkit transfer replaces the last dense layer by a new head")
    return names[id(last)]


class InputAdapter(nn.Module):
    """New data in, the base network's input out: channels, size and the base's own normalisation.

    ``(N, in_channels, H, W)`` pixels in [0, 1] -> ``(N, channels, size[0], size[1])``,
    ``(x - mean) / std`` per channel. Grey images are repeated into three
    channels (an RGB network sees the grey picture it would see in a photo);
    RGB images for a grey network become their luma. Resizing is bilinear,
    antialiased when shrinking, as the data layer resizes.
    """

    mean: torch.Tensor  # (1, channels, 1, 1)
    std: torch.Tensor
    luma: torch.Tensor  # (1, 3, 1, 1)

    def __init__(self, in_channels: int, channels: int, size: Sequence[int], mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__()
        if in_channels != channels and {in_channels, channels} != {1, 3}:
            raise ValueError(f"InputAdapter: cannot turn {in_channels}-channel images into the {channels} channels "
                             f"the base network takes (only grey <-> RGB). Received: in_channels={in_channels}")
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(f"InputAdapter: `mean` and `std` need {channels} values each, std > 0. "
                             f"Received: mean={list(mean)}, std={list(std)}")
        self.in_channels, self.channels = in_channels, channels
        self.size = (int(size[0]), int(size[1]))
        # not saved in the state dict: the run's model.json holds them (to_dict), the weights file only weights
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("luma", torch.tensor(_LUMA).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"InputAdapter expects (N, {self.in_channels}, H, W) images. Received: {tuple(x.shape)}")
        if self.in_channels == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)  # (N, 3, H, W), a view
        elif self.in_channels == 3 and self.channels == 1:
            x = (x * self.luma.to(x.dtype)).sum(1, keepdim=True)  # (N, 1, H, W)
        if tuple(x.shape[-2:]) != self.size:
            shrinking = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=shrinking)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # (N, channels, size[0], size[1])

    def to_dict(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "channels": self.channels, "size": list(self.size),
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.channels} channels, size {self.size[0]}x{self.size[1]}"


class KNNHead(nn.Module):
    """k-nearest-neighbour classifier over stored features, as a layer: ``(N, F) -> (N, classes)`` log vote shares.

    Holds the training features ``(M, F)`` and labels ``(M,)`` as buffers, so a
    run's weights file carries them. Each input takes the ``k`` training
    features nearest in Euclidean distance; class ``c`` gets
    ``log(max(votes_c / k, 1e-6))``, so ``softmax`` gives the vote shares (up
    to the floor) and ``argmax`` the majority class, ties to the lower class
    as scikit-learn's ``KNeighborsClassifier`` breaks them.
    """

    features: torch.Tensor  # (M, F) float32
    labels: torch.Tensor  # (M,) int64

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= features.shape[0]:
            raise ValueError(f"KNNHead: k must be between 1 and the {features.shape[0]} stored samples. Received: k={k}")
        self.num_classes, self.k = num_classes, k
        self.register_buffer("features", features.detach().float().clone())  # (M, F)
        self.register_buffer("labels", labels.detach().long().clone())  # (M,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # distances in float32 whatever the run's precision
            distances = torch.cdist(x.float(), self.features)  # (N, M)
            nearest = distances.topk(self.k, dim=1, largest=False).indices  # (N, k)
            votes = F.one_hot(self.labels[nearest], self.num_classes).sum(1).float()  # (N, classes)
            return (votes / self.k).clamp_min(1e-6).log()

    def extra_repr(self) -> str:
        return f"k={self.k}, {self.features.shape[0]} samples of {self.features.shape[1]} features"


class TransferNet(nn.Module):
    """``adapter`` then ``network`` (the base, its classifier ``head_name`` replaced): ``(N, C, H, W) -> (N, classes)``.

    With ``taps``, the head reads the tapped layers' pooled, standardised
    outputs ``(N, taps.num_features)`` instead of its own input.
    """

    def __init__(self, adapter: InputAdapter, network: nn.Module, head_name: str,
                 taps: FeatureTaps | None = None) -> None:
        super().__init__()
        self.adapter = adapter
        self.network = network
        self.head_name = head_name
        self.taps = taps

    @property
    def head(self) -> nn.Module:
        return get_module(self.network, self.head_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.taps is None:
            return self.network(self.adapter(x))
        with tapping(self.network, self.taps, self.head):
            return self.network(self.adapter(x))

    @contextlib.contextmanager
    def headless(self) -> Iterator[TransferNet]:
        """Within the block, the network outputs the features its head would see: ``(N, C, H, W) -> (N, F)``.

        With ``taps``: the standardised tap features (raw pooled ones while
        ``taps`` is not yet fitted).
        """
        head = self.head
        set_module(self.network, self.head_name, nn.Identity())
        try:
            yield self
        finally:
            set_module(self.network, self.head_name, head)


def new_head(spec: dict[str, Any]) -> nn.Module:
    """An untrained head from its description: ``{"type": "linear", "in_features", "num_classes"}`` or a kNN's."""
    if spec["type"] == "linear":
        return nn.Linear(int(spec["in_features"]), int(spec["num_classes"]))
    if spec["type"] == "knn":
        samples, features = int(spec["samples"]), int(spec["in_features"])
        return KNNHead(torch.zeros(samples, features), torch.zeros(samples, dtype=torch.int64),
                       int(spec["num_classes"]), int(spec["k"]))
    raise ValueError(f"unknown head type {spec.get('type')!r} in model.json; expected 'linear' or 'knn'")


def rebuild(source: dict[str, Any], base: nn.Module) -> TransferNet:
    """The untrained :class:`TransferNet` that ``source`` (a run's ``model.json`` "source") describes, around ``base``.

    ``base`` is the base network built fresh from ``source["base"]``; load the
    run's weights into the result.
    """
    head = source["head"]
    set_module(base, head["name"], new_head(head))
    adapter = source["adapter"]
    features = source.get("features")  # None: the head reads its own input (runs before multi-layer features too)
    taps = FeatureTaps(features["layers"], features["shapes"], features["grid"]) if features else None
    return TransferNet(InputAdapter(adapter["in_channels"], adapter["channels"], adapter["size"], adapter["mean"],
                                    adapter["std"]), base, head["name"], taps)
