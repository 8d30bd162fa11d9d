"""One forward pass, recorded: every call of a shown module, and every skip connection joining between modules.

Forward hooks see the modules; a :class:`~torch.overrides.TorchFunctionMode`
sees the functions a model's ``forward`` calls between them (``out + identity``,
``torch.cat``), which hooks cannot. What a leaf module computes inside itself
is its own business and is not looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnkit.hooks import first_tensor
from cnnkit.summarize.facts import layer_facts
from cnnkit.summarize.flow import Field, Flow, Merge, start


@dataclass
class Call:
    """One row's worth of the pass: a shown module's call, or a merge of tensors (``module`` None)."""

    name: str  # dotted module path; a merge's label, e.g. "add (skip from layer1.0's input)"
    module: nn.Module | None
    x: torch.Tensor | None  # the input (None for a merge: its operands are in ``merge``)
    y: torch.Tensor | None
    inner_macs: int  # a collapsed container: the MACs of the leaves called inside it
    field: Field  # receptive field of ``y`` when it was made
    merge: Merge | None = None
    depth: int = 0  # merges only: the depth of the row (its enclosing module's + 1)


def level(name: str) -> int:
    """How deep a dotted module path is: 0 for the model itself, 1 for its children."""
    return 0 if name == "" else name.count(".") + 1


class Recorder(TorchFunctionMode):
    """Hooks on every module of ``model`` and a watch on the functions between them; :attr:`calls` in order."""

    def __init__(self, model: nn.Module, shown: Sequence[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.running: list[str] = []  # shown rows in progress: their insides are collapsed into them
        self.flow = Flow()
        self._inner_macs: list[int] = []  # per running row
        self._scopes: list[tuple[str, torch.Tensor | None]] = []  # every module in progress: (name, first input)
        self._leaves = 0  # leaf modules in progress
        self._handles: list[Any] = []
        shown_names = {id(module): name for name, module in shown}
        for name, module in model.named_modules():
            leaf = next(module.children(), None) is None
            pre, post = self._hooks(name, shown_names.get(id(module)), leaf)
            self._handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def _hooks(self, name: str, row: str | None, leaf: bool) -> tuple[Any, Any]:
        def pre(module: nn.Module, inputs: Any) -> None:
            self._scopes.append((name, first_tensor(inputs)))
            self._leaves += leaf
            if row is not None:
                self.running.append(row)
                self._inner_macs.append(0)

        def post(module: nn.Module, inputs: Any, output: Any) -> None:
            self._scopes.pop()
            self._leaves -= leaf
            x, y = first_tensor(inputs), first_tensor(output)
            if leaf:
                self.flow.after_leaf(module, x, y)
                if row is None and self._inner_macs:
                    shapes = [tuple(t.shape[1:]) if t is not None else None for t in (x, y)]
                    self._inner_macs[-1] += layer_facts(module, shapes[0], shapes[1]).macs
            self.flow.produced(name, y)
            if row is not None:
                self.running.pop()
                self.calls.append(Call(row, module, x, y, self._inner_macs.pop(), self.flow.field(y)))

        return pre, post

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self._scopes and not self._leaves:  # inside the model, between modules
            merge = self.flow.after_function(getattr(func, "__name__", ""), args, kwargs, result, self._scopes[-1])
            if merge is not None and not self.running:
                self.calls.append(Call(merge.label, None, None, result, 0, merge.field, merge,
                                       level(self._scopes[-1][0]) + 1))
        return result

    def start(self, x: torch.Tensor) -> None:
        """``x`` is the model's input: one pixel sees one pixel."""
        self.flow.set(x, start())

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
