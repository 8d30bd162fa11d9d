"""Freezing done right, and the audit that shows it.

A frozen layer must not change at all while the rest trains: its parameters
get no gradient (``requires_grad=False``) *and*, for a BatchNorm, its running
mean and variance stay as they are. The second half is what Keras and
Lightning users most often miss: a BatchNorm with frozen parameters in a model
put in ``train()`` mode keeps replacing its statistics with those of the new
data, batch by batch. cnnkit swaps each frozen BatchNorm for a
:class:`cnnkit.layers.FrozenBatchNorm2d`, which cannot enter training mode.

Blocks: ``freeze:K`` counts the base network's blocks in forward order. A
block is one layer with weights (a convolution, a dense layer, or a composite
such as a residual block) together with the normalisation and weight-free
layers after it; ``nn.Sequential`` / ``nn.ModuleList`` containers are opened.
EfficientNet-Lite0 has 18 blocks (stem, 16 MBConv blocks, the 1x1 head
convolution), ResNet-18 has 9 (the stem, 8 residual blocks).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torch import nn

from cnnkit.layers import FROZEN_BATCHNORMS, freeze_statistics
from cnnkit.transfer.net import TransferNet, get_module, set_module

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


@dataclass(frozen=True)
class Block:
    """Consecutive layers that freeze together: ``name`` is the first one's dotted name."""

    name: str
    layers: tuple[str, ...]  # dotted names under the network, in forward order

    def describe(self) -> str:
        return self.name if len(self.layers) == 1 else f"{self.name} (+{', '.join(self.layers[1:])})"


def _units(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, (*_CONTAINERS, TransferNet)):
            yield from _units(child, f"{full}.")
        else:
            yield full, child


def blocks(network: nn.Module, head: str) -> list[Block]:
    """The blocks of ``network`` before its classifier ``head`` (a dotted name), in order."""
    grouped: list[list[str]] = []
    for name, module in _units(network):
        if name == head or head.startswith(f"{name}."):
            continue
        weighted = next(module.parameters(), None) is not None
        if (weighted and not isinstance(module, _NORMS)) or not grouped:
            grouped.append([name])
        else:
            grouped[-1].append(name)
    return [Block(group[0], tuple(group)) for group in grouped if _has_state(network, group)]


def _has_state(network: nn.Module, names: list[str]) -> bool:
    return any(next(get_module(network, n).parameters(), None) is not None for n in names)


def resolve(found: list[Block], count: int | None, layer: str | None) -> int:
    """How many blocks ``freeze:K`` or ``freeze:LAYER`` freezes; a bad K or name lists what exists.

    ``LAYER`` may name a block, a layer inside one (``_blocks.3._bn1``: its whole
    block freezes) or a container of several (``layer3``: through its last block).
    """
    names = [b.name for b in found]
    listing = ", ".join(f"{i + 1}:{n}" for i, n in enumerate(names[:6])) + (" ..." if len(names) > 6 else "")
    if layer is None:
        assert count is not None
        if count > len(found):
            raise ValueError(f"--strategy freeze:{count}: the base network has {len(found)} blocks before its "
                             f"classifier ({listing}); K must be 1 to {len(found)}")
        return count

    def related(name: str) -> bool:
        return name == layer or name.startswith(f"{layer}.") or layer.startswith(f"{name}.")

    hits = [i for i, block in enumerate(found) if any(related(n) for n in block.layers)]
    if hits:
        return max(hits) + 1
    near = difflib.get_close_matches(layer, [n for b in found for n in b.layers], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ValueError(f"--strategy freeze:{layer}: the base network has no layer {layer!r} before its classifier.{hint} "
                     f"Its blocks: {listing}")


def freeze(network: nn.Module, names: list[str]) -> None:
    """Freeze the layers ``names`` of ``network``: no gradients, BatchNorm statistics fixed (modules swapped)."""
    for name in names:
        module = get_module(network, name)
        for param in module.parameters():
            param.requires_grad_(False)
    freeze_batchnorm(network, names)


def freeze_batchnorm(network: nn.Module, names: list[str] | None = None) -> None:
    """Fix the running statistics of every BatchNorm in ``names`` (all of ``network`` when None)."""
    roots = [get_module(network, n) for n in names] if names is not None else [network]
    targets: list[str] = []
    index = {id(m): n for n, m in network.named_modules()}
    for root in roots:
        for module in root.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) and module.track_running_stats:
                targets.append(index[id(module)])
    for name in targets:
        set_module(network, name, freeze_statistics(get_module(network, name)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class AuditRow:
    """One layer with weights or statistics: can training change it?"""

    name: str  # dotted name in the model
    type: str
    params: int
    trainable: str  # "yes", "no", "partly", or "" (no parameters, e.g. a kNN head's stored features)
    statistics: str  # BatchNorm: "frozen" (cannot change) or "update" (follow the training batches); else ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "params": self.params, "trainable": self.trainable,
                "statistics": self.statistics}


def audit(model: nn.Module) -> list[AuditRow]:
    """For each layer that holds parameters or saved buffers: trainable or frozen, and whether BatchNorm statistics move.

    ``statistics`` is ``"update"`` for a BatchNorm that a ``model.train()``
    would let follow the batches, whatever its mode now: the audit describes
    what training will do.
    """
    rows = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None or not module.state_dict():
            continue
        flags = {p.requires_grad for p in module.parameters()}
        trainable = "" if not flags else "yes" if flags == {True} else "no" if flags == {False} else "partly"
        statistics = ""
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            statistics = "frozen" if isinstance(module, FROZEN_BATCHNORMS) else "update"
        rows.append(AuditRow(name, type(module).__name__, sum(p.numel() for p in module.parameters()), trainable,
                             statistics))
    return rows


def audit_counts(rows: list[AuditRow]) -> dict[str, int]:
    """Totals of an audit: layers trainable and frozen, BatchNorms whose statistics are frozen or still update."""
    return {
        "trainable_layers": sum(r.trainable in ("yes", "partly") for r in rows),
        "frozen_layers": sum(r.trainable == "no" for r in rows),
        "batchnorm_stats_frozen": sum(r.statistics == "frozen" for r in rows),
        "batchnorm_stats_update": sum(r.statistics == "update" for r in rows),
        "frozen_batchnorm_stats_update": sum(r.statistics == "update" and r.trainable == "no" for r in rows),
    }


def audit_text(rows: list[AuditRow]) -> str:
    """The audit as a fixed-width table with its totals."""
    width = max([len(r.name) for r in rows] + [5])
    type_width = max([len(r.type) for r in rows] + [4])
    lines = [f"{'layer'.ljust(width)}  {'type'.ljust(type_width)}  {'params':>10}  trainable  BN statistics"]
    lines += [f"{r.name.ljust(width)}  {r.type.ljust(type_width)}  {r.params:>10,}  {r.trainable or '-':9}  "
              f"{r.statistics}".rstrip() for r in rows]
    counts = audit_counts(rows)
    lines.append(f"{counts['trainable_layers']} layers train, {counts['frozen_layers']} are frozen; BatchNorm "
                 f"statistics: {counts['batchnorm_stats_frozen']} frozen, {counts['batchnorm_stats_update']} update "
                 f"in training")
    if counts["frozen_batchnorm_stats_update"]:
        lines.append(f"warning: {counts['frozen_batchnorm_stats_update']} BatchNorm layers have frozen parameters "
                     f"but their statistics still update")
    return "\n".join(lines)
