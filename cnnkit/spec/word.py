"""What a layer word is: :class:`LayerWord` holds its grammar, shape rule, torch module and read-back.

The vocabulary itself, one ``LayerWord`` per word, is :mod:`cnnkit.spec.words`.
This module imports no torch: a word's ``build`` and ``read_back`` import it
when they are called, so reading and checking a table never loads it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from math import prod
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cnnkit.spec.readers import Reader

Shape = tuple[int, ...]  # (C, H, W) for feature maps, (F,) for vectors; the batch is left out

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.spec.grammar import LayerSpec

    ShapeRule = Callable[[LayerSpec, Shape], Shape]
    Builder = Callable[[LayerSpec, Shape], nn.Module]
    ReadBack = Callable[[nn.Module], dict[str, Any] | None]


@dataclass(frozen=True)
class Word:
    """What one layer word takes: positional arguments in order, then key=value options with defaults."""

    positional: tuple[tuple[str, Reader], ...] = ()
    optional_positional: tuple[tuple[str, Reader, Any], ...] = ()  # (name, reader, default) after the required ones
    options: Mapping[str, tuple[Reader, Any]] = field(default_factory=dict)  # name -> (reader, default)
    help: str = ""
    default_from: Mapping[str, str] = field(default_factory=dict)  # option -> argument it copies when None (pool stride = size)

    def complete(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``args`` with every missing optional value and option set to its default, in the order lines are written."""
        out = {name: args[name] for name, _ in self.positional if name in args}
        out.update({name: args.get(name, default) for name, _, default in self.optional_positional})
        out.update({name: args.get(name, default) for name, (_, default) in self.options.items()})
        out.update(args)
        for name, source in self.default_from.items():
            if out.get(name) is None:
                out[name] = out[source]
        return out


@dataclass(frozen=True)
class LayerWord:
    """One layer word, defined once: how its line reads, the shape it makes, its torch module, and the way back.

    - ``shape(layer, in_shape) -> out_shape`` computes with :mod:`cnnkit.arith` and raises
      ``ValueError`` naming the rule and the received input shape;
    - ``build(layer, in_shape)`` makes the module ``(N, *in_shape) -> (N, *out_shape)``;
    - ``read_back(module)`` gives this word's arguments for a module ``build`` could have made
      (the torch module types it writes back from), or ``None`` for a module of another word.
    """

    name: str
    grammar: Word
    shape: ShapeRule
    build: Builder
    read_back: ReadBack
    aliases: tuple[str, ...] = ()  # words people write for the same layer


def registry(*words: LayerWord) -> Mapping[str, LayerWord]:
    """Name -> word, in the order given; a name or alias used twice is an error."""
    seen: dict[str, str] = {}
    for word in words:
        for name in (word.name, *word.aliases):
            if name in seen:
                raise ValueError(f"layer word {name!r} is defined twice (by {seen[name]!r} and {word.name!r})")
            seen[name] = word.name
    return MappingProxyType({word.name: word for word in words})


@cache
def load_class(path: str) -> type[nn.Module]:
    """``"torch.nn.ReLU"`` -> the class, imported on first use."""
    module, _, name = path.rpartition(".")
    cls: type[nn.Module] = getattr(importlib.import_module(module), name)
    return cls


# ----------------------------------------------------------------------------- pieces of shape rules


def show(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


def need_maps(layer: LayerSpec, shape: Shape) -> tuple[int, int, int]:
    """``(C, H, W)``, or ``ValueError`` telling where a layer on feature maps belongs."""
    if len(shape) != 3:
        raise ValueError(
            f"{layer.kind} needs feature maps (channels x height x width), but its input is a vector of "
            f"{shape[0]} values. Move it before `flatten`/`dense`, or start the table with `input CxHxW`. "
            f"Received: input shape={show(shape)}"
        )
    return shape[0], shape[1], shape[2]


def need_vector(layer: LayerSpec, shape: Shape) -> int:
    """``F`` of ``(F,)``, or ``ValueError`` asking for a ``flatten`` line first."""
    if len(shape) != 1:
        raise ValueError(
            f"{layer.kind} needs a vector, but its input is {show(shape)} feature maps: put a `flatten` line before it "
            f"(it would then see {prod(shape)} values). Received: input shape={show(shape)}"
        )
    return shape[0]


def same_shape(layer: LayerSpec, shape: Shape) -> Shape:
    """The rule of element-wise layers: ``(*) -> (*)``."""
    return shape


def not_a_layer(layer: LayerSpec, shape: Shape) -> Shape:
    raise ValueError(f"`{layer.kind}` is not a layer (the input line must come first, and only once)")


def no_module(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    raise ValueError(f"no module for layer word {layer.kind!r}")


def no_read_back(module: nn.Module) -> dict[str, Any] | None:
    return None
