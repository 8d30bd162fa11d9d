"""Layer table <-> ``torch.nn.Sequential``.

``build(spec)`` makes the modules (named ``conv1``, ``relu1``, ``maxpool1``,
``conv2``, ...); ``to_text(model, input_shape)`` writes a Sequential of
supported layers back to the same canonical table.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnkit.spec.grammar import WORDS, LayerSpec, format_layer
from cnnkit.spec.table import Spec
from cnnkit.spec.word import Shape, no_module
from cnnkit.spec.words import LAYER_WORDS


def build_layer(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    """The torch module for one checked layer whose input has shape ``in_shape`` (no batch), by its word's ``build``."""
    word = LAYER_WORDS.get(layer.kind)
    return (word.build if word else no_module)(layer, in_shape)


def build(spec: Spec) -> nn.Sequential:
    """``nn.Sequential`` of the table's layers: ``(N, *spec.input_shape) -> (N, *spec.output_shape)``."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    counts: dict[str, int] = {}
    shape = spec.input_shape
    for layer, out_shape in zip(spec.layers, spec.shapes, strict=True):
        counts[layer.kind] = counts.get(layer.kind, 0) + 1
        modules[f"{layer.kind}{counts[layer.kind]}"] = build_layer(layer, shape)
        shape = out_shape
    return nn.Sequential(modules)


# ----------------------------------------------------------------------------- back to text


def layer_of(module: nn.Module) -> LayerSpec:
    """The layer-table line for one supported module (the word whose ``read_back`` takes it); ``TypeError`` naming it otherwise."""
    for word in LAYER_WORDS.values():
        args = word.read_back(module)
        if args is not None:
            return LayerSpec(word.name, args)
    supported = ", ".join(w for w in WORDS if w != "input")
    raise TypeError(f"{type(module).__name__} has no line in the layer-table format (supported layers: {supported}). "
                    f"Received: {module!r}")


def to_text(model: nn.Sequential, input_shape: Shape | None = None) -> str:
    """Write a Sequential of supported layers as a layer table (with an ``input`` line if ``input_shape`` is given)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"to_text writes an nn.Sequential. Received: {type(model).__name__}")
    lines = [f"input {'x'.join(str(s) for s in input_shape)}"] if input_shape is not None else []
    for name, module in model.named_children():
        try:
            lines.append(format_layer(_with_defaults(layer_of(module))))
        except TypeError as error:
            raise TypeError(f"layer {name!r}: {error}") from None
    return "\n".join(lines) + "\n"


def _with_defaults(layer: LayerSpec) -> LayerSpec:
    """Fill the options a module does not record (so ``format_layer`` can compare with the defaults)."""
    return LayerSpec(layer.kind, WORDS[layer.kind].complete(layer.args))
