"""Output shape of each layer word, from :mod:`cnnkit.arith` (no torch).

Shapes leave out the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
"""

from __future__ import annotations

from math import prod

from cnnkit import arith
from cnnkit.spec.grammar import POOLS, LayerSpec

Shape = tuple[int, ...]

ELEMENTWISE = ("relu", "leakyrelu", "elu", "sigmoid", "tanh", "softmax", "dropout", "batchnorm")


def _show(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


def _need_maps(layer: LayerSpec, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(
            f"{layer.kind} needs feature maps (channels x height x width), but its input is a vector of "
            f"{shape[0]} values. Move it before `flatten`/`dense`, or start the table with `input CxHxW`. "
            f"Received: input shape={_show(shape)}"
        )
    return shape[0], shape[1], shape[2]


def output_shape(layer: LayerSpec, shape: Shape) -> Shape:
    """The shape ``layer`` produces from ``shape``; ``ValueError`` with the formula if it cannot.

    >>> output_shape(LayerSpec("conv", {"filters": 6, "kernel": (5, 5), "stride": (1, 1),
    ...     "padding": (0, 0), "dilation": (1, 1), "groups": 1, "bias": True}), (3, 32, 32))
    (6, 28, 28)
    """
    a = layer.args
    kind = layer.kind
    if kind in ELEMENTWISE:
        return shape
    if kind in ("conv", "depthwise", "separable"):
        channels, h, w = _need_maps(layer, shape)
        groups = a.get("groups", 1) if kind == "conv" else channels
        out_channels = a["filters"] if kind != "depthwise" else channels * a["multiplier"]
        if kind == "conv":
            arith.conv_params(channels, out_channels, a["kernel"], groups)  # checks divisibility by groups
        size = arith.conv_output_size((h, w), a["kernel"], a["stride"], a["padding"], a["dilation"])
        return (out_channels, *size)
    if kind == "deconv":
        channels, h, w = _need_maps(layer, shape)
        arith.conv_params(channels, a["filters"], a["kernel"], a["groups"])
        size = arith.conv_transpose_output_size((h, w), a["kernel"], a["stride"], a["padding"],
                                                a["output_padding"], a["dilation"])
        return (a["filters"], *size)
    if kind in POOLS:
        channels, h, w = _need_maps(layer, shape)
        size = arith.pool_output_size((h, w), a["size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])
        return (channels, *size)
    if kind == "globalavgpool":
        return (_need_maps(layer, shape)[0],)
    if kind == "flatten":
        return (prod(shape),)
    if kind == "dense":
        if len(shape) != 1:
            raise ValueError(
                f"dense needs a vector, but its input is {_show(shape)} feature maps: put a `flatten` line before it "
                f"(it would then see {prod(shape)} values). Received: input shape={_show(shape)}"
            )
        return (a["units"],)
    if kind == "maxout":
        if shape[0] % a["pieces"]:
            raise ValueError(
                f"maxout {a['pieces']} takes the maximum over groups of {a['pieces']} units, so the {shape[0]} "
                f"input units must be divisible by {a['pieces']}. Received: input shape={_show(shape)}"
            )
        return (shape[0] // a["pieces"], *shape[1:])
    raise ValueError(f"`{kind}` is not a layer (the input line must come first, and only once)")
