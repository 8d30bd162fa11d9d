"""Looking inside any ``nn.Module`` with forward hooks: which layers run, in what order, and what they output.

Layers are named as ``model.named_modules()`` names them (``features.0``,
``layer1.0.conv1``, ``_blocks.3._depthwise_conv``), the names users see in
``print(model)`` and in state dicts. A name that does not exist, or names a
layer that cannot be used for the purpose at hand, is a ``ValueError`` that
lists the valid names (or, for big networks, the nearest ones and how to list
them all).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from cnnkit.hooks import evaluating, first_tensor

Shape = tuple[int, ...]
LIST_ALL = "list them all with `cnnkit visualize layers TARGET`"
_MAX_LISTED = 24  # longer lists of valid names are cut to the nearest ones


@dataclass(frozen=True)
class LayerCall:
    """One layer as one forward pass saw it."""

    name: str  # the qualified module name, e.g. "features.0"
    kind: str  # the module's class name, e.g. "Conv2d"
    output_shape: Shape | None  # without the batch, e.g. (6, 24, 24); None when the output is not a tensor
    is_conv: bool  # an nn.Conv2d (or subclass): has filters, and its output is a stack of feature maps

    @property
    def spatial(self) -> bool:
        """Whether the output is a stack of 2-D maps ``(C, H, W)``: what feature maps and Grad-CAM need."""
        return self.output_shape is not None and len(self.output_shape) == 3


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``; a failure becomes a ``ValueError`` that names the input shape."""
    try:
        output = model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{type(model).__name__} cannot take an input of shape {tuple(x.shape)}: {first_line}") from None
    tensor = first_tensor(output)
    if tensor is None:
        raise TypeError(f"{type(model).__name__} returned no tensor. Received: {type(output).__name__}")
    return tensor


@dataclass
class Pass:
    """One hooked forward pass: the output, every named layer it ran, and the outputs it was asked to keep."""

    output: torch.Tensor  # the model's output (its first tensor)
    calls: list[LayerCall]  # in the order the layers finished; a layer called twice is listed at its first call
    kept: dict[str, torch.Tensor]  # name -> (N, ...) output (of its last call); in the autograd graph if grad is on
    sequence: list[LayerCall]  # every call in order, a shared layer (one ReLU used three times) at each of them


def run(model: nn.Module, x: torch.Tensor, keep: Collection[str] | Literal["convs", "all"] = ()) -> Pass:
    """``model(x)`` in eval mode with a forward hook on every named layer.

    ``keep`` names the layers whose outputs to hold on to (``"convs"``: every
    convolution, ``"all"``: every layer); check the names against ``calls`` (:func:`check_layers`). Gradients follow the caller's mode: under ``torch.no_grad()``
    nothing is recorded for backward; with them on, the kept outputs can be
    differentiated against (Grad-CAM). ``x``: one batch, e.g. ``(1, C, H, W)``.
    """
    modules = dict(model.named_modules())
    calls: dict[str, LayerCall] = {}
    sequence: list[LayerCall] = []
    kept: dict[str, torch.Tensor] = {}

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            tensor = first_tensor(output)
            is_conv = isinstance(module, nn.Conv2d)
            shape = tuple(tensor.shape[1:]) if tensor is not None else None
            sequence.append(LayerCall(name, type(module).__name__, shape, is_conv))
            calls.setdefault(name, sequence[-1])
            wanted = keep == "all" or (is_conv if keep == "convs" else name in keep)
            if tensor is not None and wanted:
                kept[name] = tensor

        return hook

    handles = [module.register_forward_hook(make_hook(name)) for name, module in modules.items() if name]
    try:
        with evaluating(model):
            output = _forward(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return Pass(output, list(calls.values()), kept, sequence)


def trace(model: nn.Module, x: torch.Tensor) -> list[LayerCall]:
    """Every named layer of ``model`` in the order its forward pass finished, with its output shape.

    ``x``: one batch ``(N, C, H, W)``; runs in eval mode without gradients.
    """
    with torch.no_grad():
        return run(model, x).calls


def _valid_names(name: str, valid: Sequence[str]) -> str:
    """All the valid names, or for a big network the nearest ones and how to list them all."""
    if len(valid) <= _MAX_LISTED:
        return f"valid names: {', '.join(valid)}"
    near = difflib.get_close_matches(name, valid, n=5, cutoff=0.3) or list(valid[:5])
    return f"nearest of the {len(valid)} valid names: {', '.join(near)} ({LIST_ALL})"


def unknown_layer(name: str, valid: Sequence[str], what: str) -> ValueError:
    """The error for a layer name that is not one of ``valid``."""
    if not valid:
        return ValueError(f"the network has no {what}. Received: layer={name!r}")
    return ValueError(f"no {what} named {name!r}; {_valid_names(name, valid)}. Received: layer={name!r}")


def check_layers(names: Sequence[str], calls: Sequence[LayerCall], what: str = "layer with feature maps") -> None:
    """``ValueError`` unless every name is a layer whose output is ``(C, H, W)`` maps.

    An existing layer with another output (a ``Linear``'s vector) is told apart
    from a name that does not exist.
    """
    valid = [call.name for call in calls if call.spatial]
    shapes = {call.name: call.output_shape for call in calls}
    for name in names:
        if name in valid:
            continue
        if name not in shapes:
            raise unknown_layer(name, valid, what)
        shape = shapes[name]
        got = "no tensor" if shape is None else f"shape {'x'.join(map(str, shape))}"
        raise ValueError(f"layer {name!r} outputs {got}, not a stack of 2-D maps (C x H x W); choose a layer "
                         f"before the flatten or global pooling, {_valid_names(name, valid)}. Received: layer={name!r}")


def default_layers(calls: Sequence[LayerCall], count: int = 3) -> list[str]:
    """``count`` convolution layers spread from first to last (early, middle, late): the progression to show."""
    convs = [call.name for call in calls if call.is_conv and call.spatial]
    if not convs:
        convs = [call.name for call in calls if call.spatial]
    if not convs:
        raise ValueError("the network has no layer with feature maps (C x H x W outputs); is it a CNN?")
    if len(convs) <= count:
        return convs
    picks = [round(i * (len(convs) - 1) / (count - 1)) for i in range(count)]
    return [convs[i] for i in picks]


def gradcam_layer(sequence: Sequence[LayerCall]) -> str:
    """Grad-CAM's default layer: the output of the last convolution block whose maps are bigger than 1x1.

    ``sequence``: every call of a forward pass (:attr:`Pass.sequence`). From the
    last such convolution, the choice moves forward through the calls that keep
    its output shape (batch norm, activation, a residual block's sum), so the
    maps are the block's finished, usually rectified output (``layer4`` of a
    ResNet, ``features.4``, the ReLU, of LeNet-5): in raw convolution outputs,
    negative values cancel evidence. A layer used more than once is stepped on
    only at its last call, the one whose output a hook keeps.
    """
    last = max((i for i, c in enumerate(sequence) if c.is_conv and c.spatial and c.output_shape is not None
                and c.output_shape[1] * c.output_shape[2] > 1), default=None)
    if last is None:
        raise ValueError("the network has no convolution layer with maps larger than 1x1; give one with --layer "
                         f"(a layer with C x H x W outputs; {LIST_ALL})")
    final_call = {call.name: i for i, call in enumerate(sequence)}
    chosen = last
    while (chosen + 1 < len(sequence) and sequence[chosen + 1].output_shape == sequence[last].output_shape
           and final_call[sequence[chosen + 1].name] == chosen + 1):
        chosen += 1
    return sequence[chosen].name


def conv_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with a 4-D ``weight`` (filters ``(C_out, C_in / groups, kh, kw)``), in definition order."""
    found = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if name and isinstance(weight, torch.Tensor) and weight.dim() == 4:
            found.append((name, module))
    return found
