"""Features from several layers at once: each output pooled on a small grid, concatenated, standardised.

A classifier on a network's last features sees what those features kept of
the source task; for a network trained on a few classes, little else. Earlier
layers are more generic (Yosinski et al., 2014), so a classifier may instead
read a multi-layer descriptor, in the spirit of hypercolumns (Hariharan et al.,
2015)::

    layer i: (N, C_i, H_i, W_i) --average over a g_h x g_w grid--> (N, C_i * g_h * g_w)
             (N, F_i)           --as it is-->                       (N, F_i)
    concatenate in layer order --> (N, F) --(x - mean) / scale--> (N, F)

with ``g = min(grid, side)`` per side (:func:`cnnkit.arith.grid_pool_bins`)
and ``mean``, ``scale`` per feature, measured on the training features
(:meth:`FeatureTaps.fit`): each feature standardised, each layer's piece
divided by the square root of its size, since the pieces come from layers of
very different scales and widths. :func:`tapping` makes a network's classifier read these features
instead of its own input, so the whole network stays one ``forward``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit import arith


class FeatureTaps(nn.Module):
    """The pooling and standardisation of tapped layer outputs: ``(N, F)`` pooled features -> ``(N, F)`` standardised.

    ``layers`` are dotted names in the tapped network, ``shapes`` their
    outputs without the batch (``(C, H, W)`` or ``(F,)``), ``grid`` the side of
    the pooling grid. ``mean`` and ``scale`` are buffers (in the state dict):
    zeros and ones until :meth:`fit`.
    """

    mean: torch.Tensor  # (F,)
    scale: torch.Tensor  # (F,)

    def __init__(self, layers: Sequence[str], shapes: Sequence[Sequence[int]], grid: int) -> None:
        super().__init__()
        if not layers or len(layers) != len(shapes):
            raise ValueError(f"FeatureTaps needs one output shape per layer, at least one layer. Received: "
                             f"{len(layers)} layers, {len(shapes)} shapes")
        self.layers = [str(name) for name in layers]
        self.shapes = [tuple(int(s) for s in shape) for shape in shapes]
        self.grid = int(grid)
        self.sizes = [arith.grid_pool_features(shape, self.grid) for shape in self.shapes]
        # each (C, H, W) layer's bins, from its known shape: plain ints, so tracing (ONNX, TorchScript) keeps them
        self.bins = {name: arith.grid_pool_bins(shape[1:], self.grid) if len(shape) == 3 else None
                     for name, shape in zip(self.layers, self.shapes, strict=True)}
        self.register_buffer("mean", torch.zeros(self.num_features))
        self.register_buffer("scale", torch.ones(self.num_features))

    @property
    def num_features(self) -> int:
        return sum(self.sizes)

    def pool(self, name: str, output: torch.Tensor) -> torch.Tensor:
        """Layer ``name``'s output as features, float32: ``(N, C, H, W) -> (N, C*g_h*g_w)`` (channel-major), ``(N, F)`` as is."""
        bins = self.bins[name]
        if bins is not None:
            return F.adaptive_avg_pool2d(output.float(), bins).flatten(1)  # (N, C, g_h, g_w) -> (N, C*g_h*g_w)
        return output.float()

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Standardise concatenated pooled features: ``(N, F) -> (N, F)``, ``(x - mean) / scale``."""
        if pooled.dim() != 2 or pooled.shape[1] != self.num_features:
            raise ValueError(f"FeatureTaps expects (N, {self.num_features}) pooled features. Received: "
                             f"{tuple(pooled.shape)}")
        return (pooled.float() - self.mean) / self.scale

    def fit(self, pooled: torch.Tensor) -> None:
        """Set ``mean`` and ``scale`` from the raw pooled training features ``(N, F)``.

        ``mean_j`` and ``std_j`` are each feature's mean and (population)
        standard deviation; ``scale_j = std_j * sqrt(F_l)``, with ``F_l`` the
        size of the piece of layer ``l`` that feature ``j`` comes from. Each
        layer then adds a squared norm of 1 on average over the training
        images (less the share of its features that are constant there),
        however wide it is: a
        wide layer does not outvote a narrow one, and the head's logits do not
        grow with the number of features (a dense head trained by Adam at
        4e-3 diverged on 3,008 features standardised per feature alone). A
        feature constant on the training images (a ReLU never active) is
        centred, not divided by zero.
        """
        pooled = pooled.double()
        std = pooled.std(0, unbiased=False)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        widths = torch.cat([torch.full((size,), float(size), dtype=std.dtype) for size in self.sizes]).sqrt()
        self.mean.copy_(pooled.mean(0))
        self.scale.copy_(std * widths.to(std.device))

    def reset(self) -> None:
        """Back to the identity (mean 0, scale 1): what :meth:`fit` measured is forgotten."""
        self.mean.zero_()
        self.scale.fill_(1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "shapes": [list(s) for s in self.shapes], "grid": self.grid,
                "sizes": list(self.sizes)}

    def describe(self) -> list[str]:
        """One line per tapped layer: ``features.13  64x7x7 -> 256``."""
        width = max(len(name) for name in self.layers)
        return [f"{name.ljust(width)}  {'x'.join(map(str, shape))} -> {size:,}"
                for name, shape, size in zip(self.layers, self.shapes, self.sizes, strict=True)]

    def extra_repr(self) -> str:
        return f"{len(self.layers)} layers, {self.grid}x{self.grid} grid, {self.num_features} features"


@contextlib.contextmanager
def tapping(network: nn.Module, taps: FeatureTaps, head: nn.Module) -> Iterator[None]:
    """Within the block, each forward pass of ``network`` feeds ``head`` the standardised tap features, not its input.

    Forward hooks pool each tapped layer's output as it is computed; a
    pre-hook on ``head`` replaces its input with ``taps(concatenation)``.
    A tapped layer must run exactly once per pass (a shared activation module
    that runs several times has no single output): otherwise ``ValueError``.
    """
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in taps.layers}

    def keep(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"FeatureTaps: layer {name!r} returns {type(output).__name__}, not a tensor")
            outputs[name].append(taps.pool(name, output))
        return hook

    def swap(module: nn.Module, args: Any) -> tuple[torch.Tensor]:
        counts = {name: len(pieces) for name, pieces in outputs.items() if len(pieces) != 1}
        if counts:
            raise ValueError(f"FeatureTaps: each tapped layer must run once before the classifier; these ran "
                             f"another number of times: {counts}")
        pooled = torch.cat([outputs[name].pop() for name in taps.layers], dim=1)  # (N, F)
        return (taps(pooled),)

    handles = [network.get_submodule(name).register_forward_hook(keep(name)) for name in taps.layers]
    handles.append(head.register_forward_pre_hook(swap))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
