"""What the slides' arithmetic says about one module, given the shape it received.

For the layer types the slides teach (convolution, transposed convolution,
pooling, fully connected, batch norm, separable convolution) this computes the
kernel/stride/padding, the output-size and parameter formulas with numbers and
the multiply-accumulates, all through :mod:`cnnkit.arith`. Other modules get
what can be said of any module (their parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from cnnkit import arith
from cnnkit import layers as L

Shape = tuple[int, ...]

# modules that keep the spatial layout and look at one position at a time: receptive field unchanged
POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
             nn.Hardsigmoid, nn.Mish, nn.PReLU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.BatchNorm2d,
             nn.GroupNorm, nn.InstanceNorm2d)
# modules after which one output cell sees the whole input
GLOBAL = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, L.GlobalAvgPool2d)


@dataclass
class LayerFacts:
    """The slide-level description of one layer call."""

    kernel: str = ""  # "5x5"
    stride: str = ""
    padding: str = ""  # "0", "1", "same", "0+1" (before+after)
    macs: int = 0
    formulas: dict[str, str] = field(default_factory=dict)  # {"output": "...", "params": "..."}
    notes: list[str] = field(default_factory=list)
    # (kernel, stride, dilation, padding before the first cell: top, left), for receptive fields
    window: tuple[arith.Pair, arith.Pair, arith.Pair, arith.Pair] | None = None
    predicted: arith.Pair | None = None  # (H_out, W_out) by the formula, checked against what torch produced


def _size(p: arith.Pair) -> str:
    return f"{p[0]}x{p[1]}"


def _short(p: arith.Pair) -> str:
    return str(p[0]) if p[0] == p[1] else _size(p)


def _sides(worked: tuple[arith.Worked, arith.Worked]) -> str:
    height, width = worked
    if height.formula == width.formula:
        return height.formula
    return f"height {height.formula}; width {width.formula}"


def _conv_padding(module: nn.Conv2d) -> arith.PaddingArg:
    if isinstance(module, L.Conv2dSame):
        return "same"
    if isinstance(module.padding, str):
        return module.padding  # type: ignore[return-value]
    return tuple(module.padding)


def _conv(module: nn.Conv2d, in_shape: Shape, out_shape: Shape) -> LayerFacts:
    k, s, d = arith.pair(module.kernel_size, "kernel_size"), arith.pair(module.stride, "stride"), \
        arith.pair(module.dilation, "dilation")
    padding = _conv_padding(module)
    hw = (in_shape[1], in_shape[2])
    worked = arith.conv_output_worked(hw, k, s, padding, d)
    pads = arith.resolve_padding(padding, hw, k, s, d)
    pad_text = padding if isinstance(padding, str) else _short((pads[0][0], pads[1][0]))
    if padding == "same" and (pads[0][0] != pads[0][1] or pads[1][0] != pads[1][1]):
        pad_text = f"same ({pads[0][0]}+{pads[0][1]}, {pads[1][0]}+{pads[1][1]})"
    params = arith.conv_params(module.in_channels, module.out_channels, k, module.groups, module.bias is not None)
    facts = LayerFacts(_size(k), _short(s), str(pad_text),
                       arith.conv_macs(module.in_channels, module.out_channels, out_shape[1:], k, module.groups),
                       {"output": _sides(worked), "params": params.formula}, window=(k, s, d, (pads[0][0], pads[1][0])),
                       predicted=(worked[0].value, worked[1].value))
    if module.groups == module.in_channels > 1:
        facts.notes.append(f"depthwise: each of the {module.in_channels} input channels has its own filter(s)")
    if module.padding_mode != "zeros":
        facts.notes.append(f"padding_mode={module.padding_mode!r}: the border is not zeros")
    return facts


def _conv_transpose(module: nn.ConvTranspose2d, in_shape: Shape, out_shape: Shape) -> LayerFacts:
    k, s, d = tuple(module.kernel_size), tuple(module.stride), tuple(module.dilation)
    p, op = tuple(module.padding), tuple(module.output_padding)
    worked = arith.conv_transpose_output_worked((in_shape[1], in_shape[2]), k, s, p, op, d)  # type: ignore[arg-type]
    params = arith.conv_params(module.in_channels, module.out_channels, k, module.groups, module.bias is not None)
    macs = arith.conv_transpose_macs(module.in_channels, module.out_channels, in_shape[1:], k, module.groups)
    return LayerFacts(_size(k), _short(s), _short(p), macs,  # type: ignore[arg-type]
                      {"output": _sides(worked), "params": params.formula}, predicted=(worked[0].value, worked[1].value))


def _pool(module: nn.MaxPool2d | nn.AvgPool2d | L.MinPool2d, in_shape: Shape) -> LayerFacts:
    k = arith.pair(module.kernel_size, "kernel_size")
    s = arith.pair(module.stride if module.stride is not None else k, "stride")
    p = arith.pair(module.padding, "padding")
    d = arith.pair(getattr(module, "dilation", 1), "dilation")
    worked = arith.pool_output_worked((in_shape[1], in_shape[2]), k, s, p, d, bool(module.ceil_mode))
    return LayerFacts(_size(k), _short(s), _short(p), 0, {"output": _sides(worked)},
                      window=(k, s, d, p), predicted=(worked[0].value, worked[1].value))


def _linear(module: nn.Linear) -> LayerFacts:
    params = arith.dense_params(module.in_features, module.out_features, module.bias is not None)
    return LayerFacts(macs=arith.dense_macs(module.in_features, module.out_features), formulas={"params": params.formula})


def _separable(module: L.SeparableConv2d, in_shape: Shape, out_shape: Shape) -> LayerFacts:
    depthwise = _conv(module.depthwise, in_shape, (module.depthwise.out_channels, *out_shape[1:]))
    multiplier = module.depthwise.out_channels // module.depthwise.in_channels
    params = arith.separable_params(module.depthwise.in_channels, module.pointwise.out_channels,
                                    tuple(module.depthwise.kernel_size), multiplier,
                                    module.pointwise.bias is not None)
    pointwise_macs = arith.conv_macs(module.pointwise.in_channels, module.pointwise.out_channels, out_shape[1:], 1)
    depthwise.macs += pointwise_macs
    depthwise.formulas["params"] = params.formula
    depthwise.notes = [f"depthwise {depthwise.kernel} per channel, then 1x1 to {module.pointwise.out_channels} channels"]
    return depthwise


def layer_facts(module: nn.Module, in_shape: Shape | None, out_shape: Shape | None) -> LayerFacts:
    """Kernel, stride, padding, MACs, formulas and receptive-field window of one call of ``module``.

    Shapes are without the batch. Where the formula's shape disagrees with the
    shape torch produced (a custom subclass that changes the rule), the formula
    is dropped and a note says so: the table never shows a wrong formula.
    """
    spatial = in_shape is not None and out_shape is not None and len(in_shape) == 3 and len(out_shape) == 3
    facts = LayerFacts()
    if isinstance(module, L.SeparableConv2d) and spatial:
        facts = _separable(module, in_shape, out_shape)  # type: ignore[arg-type]
    elif isinstance(module, nn.ConvTranspose2d) and spatial:
        facts = _conv_transpose(module, in_shape, out_shape)  # type: ignore[arg-type]
    elif isinstance(module, nn.Conv2d) and spatial:
        facts = _conv(module, in_shape, out_shape)  # type: ignore[arg-type]
    elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d | L.MinPool2d) and spatial:
        facts = _pool(module, in_shape)  # type: ignore[arg-type]
    elif isinstance(module, nn.Linear):
        facts = _linear(module)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) and module.num_features:
        facts.formulas["params"] = arith.batchnorm_params(module.num_features, module.affine).formula
        facts.notes.append(f"{2 * module.num_features} running statistics (mean, variance) are buffers, not learnt")
    elif isinstance(module, L.Maxout):
        facts.notes.append(f"maximum over groups of {module.pieces} units")
    if spatial and facts.predicted is not None and facts.predicted != tuple(out_shape[1:]):  # type: ignore[index]
        facts.formulas.pop("output", None)
        facts.window = None
        facts.notes.append("this module's output size does not follow the standard formula")
    return facts
