"""The vocabulary of the layer-table format: every layer word, each defined once.

A word is one :class:`~cnnkit.spec.word.LayerWord`: its grammar, its shape rule
(through :mod:`cnnkit.arith`), the torch module it builds, and how that module
reads back. Adding a word is one definition here, listed in :data:`LAYER_WORDS`.
Torch is imported inside ``build``/``read_back`` only, so reading a table never loads it.

>>> from cnnkit.spec.grammar import parse_line
>>> conv = LAYER_WORDS["conv"]
>>> conv.shape(parse_line("conv 6 5x5 padding=1", 1), (3, 32, 32))
(6, 30, 30)
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cnnkit import arith
from cnnkit.spec.readers import (
    Pair,
    Reader,
    positive_int,
    positive_pair,
    read_bool,
    read_float,
    read_padding,
    read_pair,
    read_shape,
)
from cnnkit.spec.word import (
    LayerWord,
    Shape,
    Word,
    load_class,
    need_maps,
    need_vector,
    no_module,
    no_read_back,
    not_a_layer,
    registry,
    same_shape,
    show,
)

if TYPE_CHECKING:
    from torch import nn

    from cnnkit.spec.grammar import LayerSpec
    from cnnkit.spec.word import ShapeRule

INPUT = LayerWord("input", Word(positional=(("shape", read_shape),), help="input CxHxW | input F"),
                  not_a_layer, no_module, no_read_back)


def _plain(name: str, module: str, shape: ShapeRule = same_shape, aliases: tuple[str, ...] = ()) -> LayerWord:
    """A word without arguments whose module is ``module()`` (a class path); only that exact class reads back."""

    def build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
        return load_class(module)()

    def read_back(m: nn.Module) -> dict[str, Any] | None:
        return {} if type(m) is load_class(module) else None

    return LayerWord(name, Word(), shape, build, read_back, aliases)


# ----------------------------------------------------------------------------- convolutions


def _conv_options(extra: str, reader: Reader, default: Any) -> dict[str, tuple[Reader, Any]]:
    """stride, padding, dilation, the layer's own option, then bias: the order lines are written in."""
    return {"stride": (positive_pair, (1, 1)), "padding": (read_padding, (0, 0)),
            "dilation": (positive_pair, (1, 1)), extra: (reader, default), "bias": (read_bool, True)}


def _conv_size(layer: LayerSpec, h: int, w: int) -> Pair:
    a = layer.args
    return arith.conv_output_size((h, w), a["kernel"], a["stride"], a["padding"], a["dilation"])


def _padding(value: Any) -> Any:
    return 0 if value == "valid" else value


def _conv2d(layer: LayerSpec, in_channels: int, out_channels: int, groups: int) -> nn.Module:
    """``nn.Conv2d``, or ``Conv2dSame`` for padding=same with a stride (torch allows "same" at stride 1 only)."""
    from torch import nn

    from cnnkit import layers as L

    a = layer.args
    if a["padding"] == "same" and a["stride"] != (1, 1):
        return L.Conv2dSame(in_channels, out_channels, a["kernel"], a["stride"], "same", a["dilation"], groups, a["bias"])
    return nn.Conv2d(in_channels, out_channels, a["kernel"], a["stride"], _padding(a["padding"]), a["dilation"],
                     groups, a["bias"])


def _conv_args(m: nn.Conv2d | nn.ConvTranspose2d) -> dict[str, Any]:
    from cnnkit import layers as L

    padding: Any = "same" if isinstance(m, L.Conv2dSame) else m.padding
    return {"kernel": tuple(m.kernel_size), "stride": tuple(m.stride), "padding": padding if isinstance(padding, str)
            else tuple(padding), "dilation": tuple(m.dilation), "bias": m.bias is not None}


def _is_depthwise(m: nn.Conv2d) -> bool:
    return m.groups == m.in_channels > 1 and m.out_channels % m.in_channels == 0


def _conv_shape(layer: LayerSpec, shape: Shape) -> Shape:
    channels, h, w = need_maps(layer, shape)
    arith.conv_params(channels, layer.args["filters"], layer.args["kernel"], layer.args.get("groups", 1))  # checks groups
    return (layer.args["filters"], *_conv_size(layer, h, w))


def _conv_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    return _conv2d(layer, in_shape[0], layer.args["filters"], layer.args["groups"])


def _conv_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    if not isinstance(m, nn.Conv2d) or _is_depthwise(m):
        return None
    return {**_conv_args(m), "filters": m.out_channels, "groups": m.groups}


CONV = LayerWord(
    "conv",
    Word(positional=(("filters", positive_int), ("kernel", positive_pair)), options=_conv_options("groups", positive_int, 1),
         help="conv N KxK [stride=S] [padding=P|valid|same] [dilation=D] [groups=G] [bias=false]"),
    _conv_shape, _conv_build, _conv_read, aliases=("conv2d", "convolution"),
)


def _depthwise_shape(layer: LayerSpec, shape: Shape) -> Shape:
    channels, h, w = need_maps(layer, shape)
    return (channels * layer.args["multiplier"], *_conv_size(layer, h, w))


def _depthwise_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    channels = in_shape[0]
    return _conv2d(layer, channels, channels * layer.args["multiplier"], groups=channels)


def _depthwise_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    if not isinstance(m, nn.Conv2d) or not _is_depthwise(m):
        return None
    return {**_conv_args(m), "multiplier": m.out_channels // m.in_channels}


DEPTHWISE = LayerWord(
    "depthwise",
    Word(positional=(("kernel", positive_pair),), options=_conv_options("multiplier", positive_int, 1),
         help="depthwise KxK [stride=S] [padding=P|valid|same] [dilation=D] [multiplier=M]"),
    _depthwise_shape, _depthwise_build, _depthwise_read,
)


def _separable_shape(layer: LayerSpec, shape: Shape) -> Shape:
    _, h, w = need_maps(layer, shape)
    return (layer.args["filters"], *_conv_size(layer, h, w))


def _separable_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from cnnkit import layers as L

    a = layer.args
    return L.SeparableConv2d(in_shape[0], a["filters"], a["kernel"], a["stride"], _padding(a["padding"]), a["dilation"],
                             a["multiplier"], a["bias"])


def _separable_read(m: nn.Module) -> dict[str, Any] | None:
    from cnnkit import layers as L

    if not isinstance(m, L.SeparableConv2d):
        return None
    return {**_conv_args(m.depthwise), "bias": m.pointwise.bias is not None, "filters": m.pointwise.out_channels,
            "multiplier": m.depthwise.out_channels // m.depthwise.in_channels}


SEPARABLE = LayerWord(
    "separable",
    Word(positional=(("filters", positive_int), ("kernel", positive_pair)), options=_conv_options("multiplier", positive_int, 1),
         help="separable N KxK [stride=S] [padding=P|valid|same] [dilation=D] [multiplier=M]"),
    _separable_shape, _separable_build, _separable_read, aliases=("depthwise_separable",),
)


def _deconv_shape(layer: LayerSpec, shape: Shape) -> Shape:
    channels, h, w = need_maps(layer, shape)
    a = layer.args
    arith.conv_params(channels, a["filters"], a["kernel"], a["groups"])
    size = arith.conv_transpose_output_size((h, w), a["kernel"], a["stride"], a["padding"], a["output_padding"], a["dilation"])
    return (a["filters"], *size)


def _deconv_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from torch import nn

    a = layer.args
    return nn.ConvTranspose2d(in_shape[0], a["filters"], a["kernel"], a["stride"], a["padding"], a["output_padding"],
                              a["groups"], a["bias"], a["dilation"])


def _deconv_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    if not isinstance(m, nn.ConvTranspose2d):
        return None
    return {**_conv_args(m), "filters": m.out_channels, "groups": m.groups, "output_padding": tuple(m.output_padding)}


DECONV = LayerWord(
    "deconv",
    Word(positional=(("filters", positive_int), ("kernel", positive_pair)),
         options={"stride": (positive_pair, (1, 1)), "padding": (read_pair, (0, 0)), "output_padding": (read_pair, (0, 0)),
                  "dilation": (positive_pair, (1, 1)), "groups": (positive_int, 1), "bias": (read_bool, True)},
         help="deconv N KxK [stride=S] [padding=P] [output_padding=Q] (transposed convolution)"),
    _deconv_shape, _deconv_build, _deconv_read, aliases=("transposed", "conv_transpose"),
)

# ----------------------------------------------------------------------------- pooling


def _pool_shape(layer: LayerSpec, shape: Shape) -> Shape:
    channels, h, w = need_maps(layer, shape)
    a = layer.args
    return (channels, *arith.pool_output_size((h, w), a["size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"]))


def _pool(name: str, module: str, aliases: tuple[str, ...]) -> LayerWord:
    """``NAME KxK [stride=S] [padding=P] [ceil_mode=true]`` with stride defaulting to the size, as the slides do.

    ``module`` is the class path of its torch module, which takes ``(size, stride, padding, ceil_mode=)``;
    only that exact class reads back.
    """

    def build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
        a = layer.args
        return load_class(module)(a["size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])

    def read_back(m: nn.Module) -> dict[str, Any] | None:
        if type(m) is not load_class(module):
            return None
        pool: Any = m  # sizes are ints or pairs, which nn.Module's typing does not know
        if arith.pair(getattr(pool, "dilation", 1), "dilation") != (1, 1):  # of the three, only max pooling dilates
            raise TypeError("a dilated max pooling has no line in the layer-table format")
        return {"size": arith.pair(pool.kernel_size, "kernel_size"), "stride": arith.pair(pool.stride, "stride"),
                "padding": arith.pair(pool.padding, "padding"), "ceil_mode": bool(pool.ceil_mode)}

    options: dict[str, tuple[Reader, Any]] = {"stride": (positive_pair, None), "padding": (read_pair, (0, 0)),
                                              "ceil_mode": (read_bool, False)}
    grammar = Word(positional=(("size", positive_pair),), options=options, help=f"{name} KxK [stride=S] [padding=P]",
                   default_from={"stride": "size"})
    return LayerWord(name, grammar, _pool_shape, build, read_back, aliases)


POOL_WORDS = (_pool("maxpool", "torch.nn.MaxPool2d", ("max_pool", "maxpooling")),
              _pool("avgpool", "torch.nn.AvgPool2d", ("avg_pool", "averagepool")),
              _pool("minpool", "cnnkit.layers.MinPool2d", ("min_pool",)))


def _globalavgpool_shape(layer: LayerSpec, shape: Shape) -> Shape:
    return (need_maps(layer, shape)[0],)  # (C, H, W) -> (C,)


GLOBALAVGPOOL = _plain("globalavgpool", "cnnkit.layers.GlobalAvgPool2d", _globalavgpool_shape, aliases=("gap", "global_avg_pool"))

# ----------------------------------------------------------------------------- activations, dropout, maxout, softmax


def _scalar(name: str, arg: str, reader: Reader, default: float, module: str, attribute: str, help: str,
            aliases: tuple[str, ...] = ()) -> LayerWord:
    """An element-wise word with one optional number: ``NAME [arg]`` builds ``module(arg)``; ``module.attribute`` reads back."""

    def build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
        return load_class(module)(layer.args[arg])

    def read_back(m: nn.Module) -> dict[str, Any] | None:
        return {arg: getattr(m, attribute)} if isinstance(m, load_class(module)) else None

    return LayerWord(name, Word(optional_positional=((arg, reader, default),), help=help), same_shape, build, read_back, aliases)


LEAKYRELU = _scalar("leakyrelu", "slope", lambda text, name: read_float(text, name, 0.0, 1.0), 0.1, "torch.nn.LeakyReLU",
                    "negative_slope", "leakyrelu [slope] (default 0.1, as the slides)", aliases=("leaky_relu",))
ELU = _scalar("elu", "alpha", lambda text, name: read_float(text, name, 0.0, 1e6), 1.0, "torch.nn.ELU", "alpha",
              "elu [alpha] (default 1.0)")
DROPOUT = _scalar("dropout", "rate", lambda text, name: read_float(text, name, 0.0, 1.0, high_open=True), 0.5,
                  "torch.nn.Dropout", "p", "dropout P (default 0.5)")


def _maxout_shape(layer: LayerSpec, shape: Shape) -> Shape:
    pieces = layer.args["pieces"]
    if shape[0] % pieces:
        raise ValueError(
            f"maxout {pieces} takes the maximum over groups of {pieces} units, so the {shape[0]} "
            f"input units must be divisible by {pieces}. Received: input shape={show(shape)}"
        )
    return (shape[0] // pieces, *shape[1:])


def _maxout_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from cnnkit import layers as L

    return L.Maxout(layer.args["pieces"])


def _maxout_read(m: nn.Module) -> dict[str, Any] | None:
    from cnnkit import layers as L

    return {"pieces": m.pieces} if isinstance(m, L.Maxout) else None


MAXOUT = LayerWord("maxout", Word(positional=(("pieces", positive_int),), help="maxout K (max over groups of K units)"),
                   _maxout_shape, _maxout_build, _maxout_read)


def _softmax_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from torch import nn

    return nn.Softmax(dim=1)


def _softmax_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    return {} if isinstance(m, nn.Softmax) and m.dim in (1, -1) else None


SOFTMAX = LayerWord("softmax", Word(), same_shape, _softmax_build, _softmax_read)

# ----------------------------------------------------------------------------- vectors and the rest


def _flatten_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from torch import nn

    return nn.Flatten()


def _flatten_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    return {} if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1 else None


FLATTEN = LayerWord("flatten", Word(), lambda layer, shape: (prod(shape),), _flatten_build, _flatten_read)


def _dense_shape(layer: LayerSpec, shape: Shape) -> Shape:
    need_vector(layer, shape)
    return (layer.args["units"],)


def _dense_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from torch import nn

    return nn.Linear(in_shape[0], layer.args["units"], bias=layer.args["bias"])


def _dense_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    return {"units": m.out_features, "bias": m.bias is not None} if isinstance(m, nn.Linear) else None


DENSE = LayerWord(
    "dense",
    Word(positional=(("units", positive_int),), options={"bias": (read_bool, True)}, help="dense N [bias=false]"),
    _dense_shape, _dense_build, _dense_read,
    aliases=("linear", "fc", "fully_connected"),
)


def _batchnorm_build(layer: LayerSpec, in_shape: Shape) -> nn.Module:
    from torch import nn

    return nn.BatchNorm2d(in_shape[0]) if len(in_shape) == 3 else nn.BatchNorm1d(in_shape[0])


def _batchnorm_read(m: nn.Module) -> dict[str, Any] | None:
    from torch import nn

    return {} if type(m) in (nn.BatchNorm2d, nn.BatchNorm1d) else None  # not the frozen subclasses: they have no line


BATCHNORM = LayerWord("batchnorm", Word(), same_shape, _batchnorm_build, _batchnorm_read, aliases=("batch_norm", "bn"))

# ----------------------------------------------------------------------------- the vocabulary, in the order help lists it

LAYER_WORDS: Mapping[str, LayerWord] = registry(
    INPUT, CONV, DEPTHWISE, SEPARABLE, DECONV, *POOL_WORDS, GLOBALAVGPOOL,
    _plain("relu", "torch.nn.ReLU"), LEAKYRELU, ELU, _plain("sigmoid", "torch.nn.Sigmoid"), _plain("tanh", "torch.nn.Tanh"),
    MAXOUT, SOFTMAX, FLATTEN, DENSE, DROPOUT, BATCHNORM,
)

WORDS: Mapping[str, Word] = MappingProxyType({name: word.grammar for name, word in LAYER_WORDS.items()})
ALIASES: Mapping[str, str] = MappingProxyType({alias: word.name for word in LAYER_WORDS.values() for alias in word.aliases})
POOLS = tuple(word.name for word in POOL_WORDS)
