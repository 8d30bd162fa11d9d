"""Which input pixels each tensor of a forward pass sees, and where the skip connections join.

The summary follows tensors rather than a chain of rows. Every tensor gets a
receptive field when it is made (an :class:`cnnkit.arith.Span` per side): by
a module (its window, or a transposed convolution's), by an operation that
keeps positions (``flatten``, ``relu``, ``pad`` of channels), or by an addition
or a concatenation of tensors made earlier. Where two paths meet, each cell of
the sum (or of the stacked channels) sees what it sees on either path: for
paths of the same layout, the larger field. That is how a residual block's
``relu(F(x) + x)`` or U-Net's ``cat([skip, up(x)])`` keep a receptive field
instead of ending it.

Additions and channel concatenations of two or more tensors that the pass
made become rows of their own (:class:`Merge`), named after where the skip
comes from: ``add (skip from layer1.0's input)``, ``concat (skip from down.2)``.
Nothing here is specific to cnnkit's zoo: any model written with ``+``,
``torch.add`` or ``torch.cat`` is seen the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from cnnkit import arith
from cnnkit.summarize.facts import GLOBAL, POINTWISE, LayerFacts, Shape, layer_facts

Spans = tuple[arith.Span, arith.Span]  # (height, width)
Field = Spans | Literal["all"] | None  # None: unknown


def start() -> Spans:
    """The model's input: each pixel sees itself."""
    return arith.Span(), arith.Span()


def cells(field: Field) -> tuple[arith.Pair | str | None, arith.Pair | None]:
    """What the RF and Jump columns show for ``field``: ``((h, w), (jump_h, jump_w))``, ``("all", None)``, or
    ``(None, None)`` where unknown; the jump is None where it is not a whole number of pixels."""
    if not isinstance(field, tuple):
        return field, None
    try:
        size = (field[0].size(), field[1].size())
        jumps = (field[0].jump(), field[1].jump())
    except RecursionError:  # a path of thousands of layers: cnnkit does not follow it
        return None, None
    return size, None if jumps[0] is None or jumps[1] is None else (jumps[0], jumps[1])


# torch functions (by name, as __torch_function__ sees them) that join tensors into one; a row each
MERGES = {"add": "add", "add_": "add", "__add__": "add", "__iadd__": "add", "__radd__": "add",
          "cat": "concat", "concat": "concat", "concatenate": "concat"}
# elementwise functions of several tensors: the result sees what its tensor inputs see (an SE gate, a mask)
ELEMENTWISE = {"sub", "sub_", "mul", "mul_", "div", "div_", "__sub__", "__rsub__", "__mul__", "__rmul__",
               "__truediv__", "__imul__", "maximum", "minimum", "where"}
# functions that move no value to another position: the result sees what their input sees
RESHAPES = {"flatten", "reshape", "view", "contiguous", "clone", "detach", "squeeze", "unsqueeze"}
POSITIONWISE = {"relu", "relu_", "gelu", "silu", "sigmoid", "tanh", "hardswish", "leaky_relu", "elu", "dropout",
                "pad"}  # pad: only where it adds channels, not rows or columns (checked below)


@dataclass(frozen=True)
class Merge:
    """One addition or channel concatenation of tensors the forward pass made: a skip connection joining."""

    kind: str  # "add" or "concat"
    operand_shapes: tuple[Shape, ...]  # without the batch, in the order of the call (a concat's channel order)
    main: int  # which operand is the main path: the one through the most layers (the others are skips)
    sources: tuple[str, ...]  # per operand, where a skip comes from ("layer1.0's input", "down.2"); "" main / unknown
    fields: tuple[Field, ...]  # the operands' receptive fields
    field: Field  # the result's
    parallel: bool = False  # paths of equal length (an Inception module, detection heads): branches, not skips

    @property
    def main_shape(self) -> Shape:
        return self.operand_shapes[self.main]

    @property
    def label(self) -> str:
        """``add (skip from layer1.0's input)``; ``concat (skips from a, b)`` for several; ``concat (of a, b, c)``."""
        if self.parallel:
            return f"{self.kind} (of {', '.join(source or '?' for source in self.sources)})"
        known = [source for i, source in enumerate(self.sources) if source and i != self.main]
        if not known:
            return f"{self.kind} (skip)"
        return f"{self.kind} (skip{'s' if len(known) > 1 else ''} from {', '.join(known)})"

    def facts(self) -> LayerFacts:
        """The row's arithmetic: the shapes that meet, and the receptive field as the larger of the paths' fields."""
        shapes = ["x".join(map(str, shape)) for shape in self.operand_shapes]
        if self.kind == "add":
            formulas = {"sum": f"{' + '.join(shapes)} = {shapes[0]} (elementwise)"}
        else:
            channels = [shape[0] for shape in self.operand_shapes]
            formulas = {"channels": f"{' + '.join(map(str, channels))} = {sum(channels)}"}
        facts = LayerFacts(formulas=formulas)
        sizes = [size for size in (cells(f)[0] for f in self.fields) if isinstance(size, tuple)]
        joined = cells(self.field)[0]
        if isinstance(joined, tuple) and len(sizes) == len(self.fields):
            parts = ", ".join(_side(size) for size in sizes)
            larger = joined == (max(size[0] for size in sizes), max(size[1] for size in sizes))
            rule = f"max({parts})" if larger else f"the union of ({parts}), not aligned"
            facts.formulas["receptive field"] = f"{rule} = {_side(joined)}"
        return facts


def combine(fields: Sequence[Field]) -> Field:
    """The field of a tensor computed from tensors of these fields, position by position (sum, concat, product).

    Any unknown: unknown; any ``"all"``: ``"all"``; else each cell sees what it
    sees through any of them: for a residual block ``max(7, 3) = 7``.
    """
    if not fields or any(f is None for f in fields):
        return None
    if any(f == "all" for f in fields):
        return "all"
    known = [f for f in fields if isinstance(f, tuple)]
    return known[0][0].union(*(f[0] for f in known[1:])), known[0][1].union(*(f[1] for f in known[1:]))


def leaf_field(module: nn.Module, field: Field, in_shape: Shape | None, out_shape: Shape | None) -> Field:
    """The field of a leaf module's output, given its input's ``field``: its window, or None where cnnkit knows none."""
    if field is None:
        return None
    if field == "all" or isinstance(module, GLOBAL):
        return "all"
    if not isinstance(field, tuple):
        return None
    if isinstance(module, nn.ConvTranspose2d) and not isinstance(module.padding, str):
        k, s = arith.pair(tuple(module.kernel_size), "kernel_size"), arith.pair(tuple(module.stride), "stride")
        p, d = arith.pair(tuple(module.padding), "padding"), arith.pair(tuple(module.dilation), "dilation")
        return field[0].transposed(k[0], s[0], p[0], d[0]), field[1].transposed(k[1], s[1], p[1], d[1])
    window = layer_facts(module, in_shape, out_shape).window
    if window is not None:
        k, s, d, p = window
        return field[0].window(k[0], s[0], p[0], d[0]), field[1].window(k[1], s[1], p[1], d[1])
    return field if isinstance(module, POINTWISE) else None


def _tensors(values: Any) -> list[torch.Tensor]:
    """The tensors among a function's arguments, and inside a list or tuple of them (``torch.cat([a, b])``)."""
    found: list[torch.Tensor] = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, list | tuple):
            found += [item for item in value if isinstance(item, torch.Tensor)]
    return found


def _side(p: arith.Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def _shape(t: torch.Tensor) -> Shape:
    return tuple(t.shape[1:])


class Flow:
    """Every tensor of one forward pass that cnnkit follows: its receptive field, how many layers it went through
    (the longest path from the input), when it was made and the module that made it.

    Tensors are held (not only their ids), so an id is never reused for another
    tensor during the pass.
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[torch.Tensor, Field, int, int]] = {}  # id -> (tensor, field, layers, when made)
        self._producers: dict[int, str] = {}  # id -> the outermost module whose output it is
        self._clock = 0

    def set(self, t: torch.Tensor, field: Field, layers: int = 0) -> None:
        self._clock += 1
        self._known[id(t)] = (t, field, layers, self._clock)

    def tracked(self, t: torch.Tensor) -> bool:
        return id(t) in self._known

    def field(self, t: torch.Tensor | None) -> Field:
        """The receptive field of ``t``, None where unknown."""
        entry = None if t is None else self._known.get(id(t))
        return None if entry is None else entry[1]

    def _layers(self, t: torch.Tensor | None) -> int:
        entry = None if t is None else self._known.get(id(t))
        return 0 if entry is None else entry[2]

    def _path(self, t: torch.Tensor) -> tuple[int, int]:
        """What makes ``t`` the main path of a join: the most layers, then (a tie) made last."""
        _, _, layers, made = self._known[id(t)]
        return layers, made

    def after_leaf(self, module: nn.Module, x: torch.Tensor | None, y: torch.Tensor | None) -> None:
        """A leaf module turned ``x`` into ``y``."""
        if y is None:
            return
        in_shape = None if x is None else _shape(x)
        self.set(y, leaf_field(module, self.field(x), in_shape, _shape(y)), self._layers(x) + 1)

    def produced(self, name: str, y: torch.Tensor | None) -> None:
        """Module ``name`` returned ``y``; called innermost first, so a container's name overwrites its last child's."""
        if y is not None and self.tracked(y):
            self._producers[id(y)] = name

    def after_function(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], result: Any,
                       scope: tuple[str, torch.Tensor | None]) -> Merge | None:
        """A torch function ``name`` ran between modules, inside module ``scope`` = (its name, its input).

        Returns the :class:`Merge` where it joined two or more tensors of the
        pass into one of the same layout: an addition, or a concatenation of
        channels; else None (the result's field is still recorded).
        """
        if not isinstance(result, torch.Tensor):
            return None
        inputs = [t for t in _tensors([*args, *kwargs.values()]) if self.tracked(t)]
        kind = MERGES.get(name)
        if not inputs:
            if self.tracked(result):  # changed in place by something cnnkit cannot follow
                self.set(result, None)
            return None
        if len(inputs) == 1 and (kind is not None or name in ELEMENTWISE):  # x + 1, x * scale: positions kept
            self.set(result, self.field(inputs[0]) if result.shape == inputs[0].shape else None, self._layers(inputs[0]))
            return None
        if kind is not None or name in ELEMENTWISE:
            return self._merge(kind, inputs, args, kwargs, result, scope)
        keeps = name in RESHAPES or (name in POSITIONWISE and len(inputs) == 1 and result.dim() == inputs[0].dim()
                                     and result.shape[2:] == inputs[0].shape[2:])
        self.set(result, self.field(inputs[0]) if keeps and len(inputs) == 1 else None, self._layers(inputs[0]))
        return None

    def _merge(self, kind: str | None, inputs: list[torch.Tensor], args: Sequence[Any], kwargs: dict[str, Any],
               result: torch.Tensor, scope: tuple[str, torch.Tensor | None]) -> Merge | None:
        fields = tuple(self.field(t) for t in inputs)
        is_add = kind == "add" and all(t.shape == result.shape for t in inputs)
        is_concat = kind == "concat" and result.dim() == 4 and _dim(args, kwargs, result.dim()) == 1
        # joined along height or width, the positions of the parts no longer line up: no one field per cell
        field = None if kind == "concat" and not is_concat else combine(fields)
        merge = None
        if is_add or is_concat:
            # the main path went through the most layers (the block's own); the others arrive through skips
            main = max(range(len(inputs)), key=lambda i: self._path(inputs[i]))
            parallel = len({self._layers(t) for t in inputs}) == 1
            sources = tuple("" if i == main and not parallel else self._source(t, scope) for i, t in enumerate(inputs))
            merge = Merge(kind or "", tuple(_shape(t) for t in inputs), main, sources, fields, field, parallel)
        self.set(result, field, max(self._layers(t) for t in inputs))
        return merge

    def _source(self, t: torch.Tensor, scope: tuple[str, torch.Tensor | None]) -> str:
        """Where a skip comes from: the enclosing module's input (a residual identity), or the module that made it."""
        name, first_input = scope
        if t is first_input:
            return f"{name}'s input" if name else "the input"
        return self._producers.get(id(t), "")


def _dim(args: Sequence[Any], kwargs: dict[str, Any], rank: int) -> int:
    """The ``dim`` argument of ``torch.cat(tensors, dim)``, made non-negative."""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    return dim + rank if isinstance(dim, int) and dim < 0 else dim
