"""Layer table <-> ``torch.nn.Sequential``.

``build(spec)`` makes the modules (named ``conv1``, ``relu1``, ``maxpool1``,
``conv2``, ...); ``to_text(model, input_shape)`` writes a Sequential of
supported layers back to the same canonical table.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnnkit import layers as L
from cnnkit.spec.grammar import POOLS, WORDS, LayerSpec, format_layer
from cnnkit.spec.shapes import Shape
from cnnkit.spec.table import Spec


def _padding(value: Any) -> Any:
    return 0 if value == "valid" else value


def build_layer(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    """The torch module for one checked layer whose input has shape ``in_shape`` (no batch)."""
    a, kind = layer.args, layer.kind
    channels = in_shape[0]
    if kind in ("conv", "depthwise"):
        groups = a["groups"] if kind == "conv" else channels
        out_channels = a["filters"] if kind == "conv" else channels * a["multiplier"]
        if a["padding"] == "same" and a["stride"] != (1, 1):
            return L.Conv2dSame(channels, out_channels, a["kernel"], a["stride"], "same", a["dilation"], groups, a["bias"])
        return nn.Conv2d(channels, out_channels, a["kernel"], a["stride"], _padding(a["padding"]), a["dilation"],
                         groups, a["bias"])
    if kind == "separable":
        return L.SeparableConv2d(channels, a["filters"], a["kernel"], a["stride"], _padding(a["padding"]),
                                 a["dilation"], a["multiplier"], a["bias"])
    if kind == "deconv":
        return nn.ConvTranspose2d(channels, a["filters"], a["kernel"], a["stride"], a["padding"], a["output_padding"],
                                  a["groups"], a["bias"], a["dilation"])
    if kind == "maxpool":
        return nn.MaxPool2d(a["size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])
    if kind == "avgpool":
        return nn.AvgPool2d(a["size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])
    if kind == "minpool":
        return L.MinPool2d(a["size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])
    if kind == "dense":
        return nn.Linear(channels, a["units"], bias=a["bias"])
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels) if len(in_shape) == 3 else nn.BatchNorm1d(channels)
    simple: dict[str, nn.Module] = {
        "globalavgpool": L.GlobalAvgPool2d(), "relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(),
        "softmax": nn.Softmax(dim=1), "flatten": nn.Flatten(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "leakyrelu":
        return nn.LeakyReLU(a["slope"])
    if kind == "elu":
        return nn.ELU(a["alpha"])
    if kind == "maxout":
        return L.Maxout(a["pieces"])
    if kind == "dropout":
        return nn.Dropout(a["rate"])
    raise ValueError(f"no module for layer word {kind!r}")


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


def _conv_args(m: nn.Conv2d | nn.ConvTranspose2d) -> dict[str, Any]:
    padding: Any = "same" if isinstance(m, L.Conv2dSame) else m.padding
    return {"kernel": tuple(m.kernel_size), "stride": tuple(m.stride), "padding": padding if isinstance(padding, str)
            else tuple(padding), "dilation": tuple(m.dilation), "bias": m.bias is not None}


def _pool_args(m: nn.MaxPool2d | nn.AvgPool2d | L.MinPool2d) -> dict[str, Any]:
    from cnnkit.arith import pair

    if isinstance(m, nn.MaxPool2d) and pair(m.dilation, "dilation") != (1, 1):
        raise TypeError("a dilated max pooling has no line in the layer-table format")
    return {"size": pair(m.kernel_size, "kernel_size"), "stride": pair(m.stride, "stride"),
            "padding": pair(m.padding, "padding"), "ceil_mode": bool(m.ceil_mode)}


def layer_of(module: nn.Module) -> LayerSpec:
    """The layer-table line for one supported module; ``TypeError`` naming it otherwise."""
    if isinstance(module, nn.Conv2d) and not isinstance(module, nn.ConvTranspose2d):
        args = _conv_args(module)
        depthwise = module.groups == module.in_channels > 1 and module.out_channels % module.in_channels == 0
        if depthwise:
            return LayerSpec("depthwise", {**args, "multiplier": module.out_channels // module.in_channels})
        return LayerSpec("conv", {**args, "filters": module.out_channels, "groups": module.groups})
    if isinstance(module, L.SeparableConv2d):
        args = _conv_args(module.depthwise)
        return LayerSpec("separable", {**args, "bias": module.pointwise.bias is not None,
                                       "filters": module.pointwise.out_channels,
                                       "multiplier": module.depthwise.out_channels // module.depthwise.in_channels})
    if isinstance(module, nn.ConvTranspose2d):
        return LayerSpec("deconv", {**_conv_args(module), "filters": module.out_channels, "groups": module.groups,
                                    "output_padding": tuple(module.output_padding)})
    pools = {nn.MaxPool2d: "maxpool", nn.AvgPool2d: "avgpool", L.MinPool2d: "minpool"}
    for cls, word in pools.items():
        if type(module) is cls:
            return LayerSpec(word, _pool_args(module))  # type: ignore[arg-type]
    if isinstance(module, nn.Linear):
        return LayerSpec("dense", {"units": module.out_features, "bias": module.bias is not None})
    if isinstance(module, nn.LeakyReLU):
        return LayerSpec("leakyrelu", {"slope": module.negative_slope})
    if isinstance(module, nn.ELU):
        return LayerSpec("elu", {"alpha": module.alpha})
    if isinstance(module, nn.Dropout):
        return LayerSpec("dropout", {"rate": module.p})
    if isinstance(module, L.Maxout):
        return LayerSpec("maxout", {"pieces": module.pieces})
    if isinstance(module, nn.Softmax) and module.dim in (1, -1):
        return LayerSpec("softmax")
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return LayerSpec("flatten")
    simple = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", L.GlobalAvgPool2d: "globalavgpool",
              nn.BatchNorm2d: "batchnorm", nn.BatchNorm1d: "batchnorm"}
    for cls, word in simple.items():
        if type(module) is cls:
            return LayerSpec(word)
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
    word = WORDS[layer.kind]
    args = {name: default for name, (_, default) in word.options.items()}
    args.update({name: default for name, _, default in word.optional_positional})
    args.update(layer.args)
    if layer.kind in POOLS and args.get("stride") is None:
        args["stride"] = args["size"]
    return LayerSpec(layer.kind, args)
