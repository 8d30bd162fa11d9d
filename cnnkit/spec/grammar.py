"""The words of the layer-table format: what each layer takes, and how a line is read.

A line is ``WORD [positional ...] [key=value ...]  # comment``. This module
knows the vocabulary and turns one line into a :class:`LayerSpec`; it does no
shape arithmetic (see :mod:`cnnkit.spec.shapes`) and imports no torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Pair = tuple[int, int]


class SpecError(ValueError):
    """A layer table that cannot be read or does not fit its input; the message names file, line and layer."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a table, with its arguments normalised (defaults filled in)."""

    kind: str  # the layer word: conv, depthwise, separable, deconv, maxpool, dense, relu, ...
    args: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"filters": 6, "kernel": (5, 5), "stride": (1, 1), ...}
    line: int = 0  # 1-based line in the source; 0 for a layer made in code
    source: str = ""  # the line as written, without its comment

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", MappingProxyType(dict(self.args)))

    def where(self, path: str) -> str:
        """``file:line: `conv 16 5x5`:`` for messages."""
        location = f"{path}:{self.line}" if self.line else path
        return f"{location}: `{self.source or format_layer(self)}`"


# ----------------------------------------------------------------------------- value readers


def read_int(text: str, name: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"`{name}` must be a whole number. Received: {name}={text}") from None
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}. Received: {name}={text}")
    return value


def read_pair(text: str, name: str, minimum: int = 0) -> Pair:
    """``5`` or ``5x5`` or ``3x5`` -> (height, width)."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        value = read_int(parts[0], name, minimum)
        return value, value
    if len(parts) == 2:
        return read_int(parts[0], name, minimum), read_int(parts[1], name, minimum)
    raise ValueError(f"`{name}` must be N or HxW, like 5 or 5x5. Received: {name}={text}")


def read_padding(text: str, name: str = "padding") -> Pair | str:
    if text.lower() in ("valid", "same"):
        return text.lower()
    return read_pair(text, name)


def read_float(text: str, name: str, low: float, high: float, *, high_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"`{name}` must be a number. Received: {name}={text}") from None
    if not (low <= value and (value < high if high_open else value <= high)):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"`{name}` must be in {bound}. Received: {name}={text}")
    return value


def read_bool(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise ValueError(f"`{name}` must be true or false. Received: {name}={text}")


def read_shape(text: str, name: str = "input") -> tuple[int, ...]:
    """``3x32x32`` (channels x height x width) or ``400`` (features)."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 3):
        raise ValueError(f"`{name}` must be CxHxW (channels x height x width) or F (features), like 3x32x32. Received: {text}")
    return tuple(read_int(p, name, minimum=1) for p in parts)


# ----------------------------------------------------------------------------- vocabulary

Reader = Callable[[str, str], Any]


@dataclass(frozen=True)
class Word:
    """What one layer word takes: positional arguments in order, then key=value options with defaults."""

    positional: tuple[tuple[str, Reader], ...] = ()
    optional_positional: tuple[tuple[str, Reader, Any], ...] = ()  # (name, reader, default) after the required ones
    options: Mapping[str, tuple[Reader, Any]] = field(default_factory=dict)  # name -> (reader, default)
    help: str = ""


def _positive_int(text: str, name: str) -> int:
    return read_int(text, name, minimum=1)


def _positive_pair(text: str, name: str) -> Pair:
    return read_pair(text, name, minimum=1)


def _probability(text: str, name: str) -> float:
    return read_float(text, name, 0.0, 1.0, high_open=True)


def _slope(text: str, name: str) -> float:
    return read_float(text, name, 0.0, 1.0)


def _alpha(text: str, name: str) -> float:
    return read_float(text, name, 0.0, 1e6)


def _conv_options(extra: str, reader: Reader, default: Any) -> dict[str, tuple[Reader, Any]]:
    """stride, padding, dilation, the layer's own option, then bias: the order lines are written in."""
    return {"stride": (_positive_pair, (1, 1)), "padding": (read_padding, (0, 0)),
            "dilation": (_positive_pair, (1, 1)), extra: (reader, default), "bias": (read_bool, True)}


_POOL_OPTIONS: dict[str, tuple[Reader, Any]] = {
    "stride": (_positive_pair, None),  # None: the pool size, as the slides do
    "padding": (read_pair, (0, 0)),
    "ceil_mode": (read_bool, False),
}
_NO_ARGS = Word()
POOLS = ("maxpool", "avgpool", "minpool")

WORDS: Mapping[str, Word] = MappingProxyType({
    "input": Word(positional=(("shape", read_shape),), help="input CxHxW | input F"),
    "conv": Word(positional=(("filters", _positive_int), ("kernel", _positive_pair)),
                 options=_conv_options("groups", _positive_int, 1),
                 help="conv N KxK [stride=S] [padding=P|valid|same] [dilation=D] [groups=G] [bias=false]"),
    "depthwise": Word(positional=(("kernel", _positive_pair),),
                      options=_conv_options("multiplier", _positive_int, 1),
                      help="depthwise KxK [stride=S] [padding=P|valid|same] [dilation=D] [multiplier=M]"),
    "separable": Word(positional=(("filters", _positive_int), ("kernel", _positive_pair)),
                      options=_conv_options("multiplier", _positive_int, 1),
                      help="separable N KxK [stride=S] [padding=P|valid|same] [dilation=D] [multiplier=M]"),
    "deconv": Word(positional=(("filters", _positive_int), ("kernel", _positive_pair)),
                   options={"stride": (_positive_pair, (1, 1)), "padding": (read_pair, (0, 0)),
                            "output_padding": (read_pair, (0, 0)), "dilation": (_positive_pair, (1, 1)),
                            "groups": (_positive_int, 1), "bias": (read_bool, True)},
                   help="deconv N KxK [stride=S] [padding=P] [output_padding=Q] (transposed convolution)"),
    "maxpool": Word(positional=(("size", _positive_pair),), options=_POOL_OPTIONS, help="maxpool KxK [stride=S] [padding=P]"),
    "avgpool": Word(positional=(("size", _positive_pair),), options=_POOL_OPTIONS, help="avgpool KxK [stride=S] [padding=P]"),
    "minpool": Word(positional=(("size", _positive_pair),), options=_POOL_OPTIONS, help="minpool KxK [stride=S] [padding=P]"),
    "globalavgpool": _NO_ARGS,
    "relu": _NO_ARGS,
    "leakyrelu": Word(optional_positional=(("slope", _slope, 0.1),), help="leakyrelu [slope] (default 0.1, as the slides)"),
    "elu": Word(optional_positional=(("alpha", _alpha, 1.0),), help="elu [alpha] (default 1.0)"),
    "sigmoid": _NO_ARGS,
    "tanh": _NO_ARGS,
    "maxout": Word(positional=(("pieces", _positive_int),), help="maxout K (max over groups of K units)"),
    "softmax": _NO_ARGS,
    "flatten": _NO_ARGS,
    "dense": Word(positional=(("units", _positive_int),), options={"bias": (read_bool, True)}, help="dense N [bias=false]"),
    "dropout": Word(optional_positional=(("rate", _probability, 0.5),), help="dropout P (default 0.5)"),
    "batchnorm": _NO_ARGS,
})

# words people write for the same layers
ALIASES: Mapping[str, str] = MappingProxyType({
    "conv2d": "conv", "convolution": "conv", "linear": "dense", "fc": "dense", "fully_connected": "dense",
    "max_pool": "maxpool", "maxpooling": "maxpool", "avg_pool": "avgpool", "averagepool": "avgpool",
    "min_pool": "minpool", "leaky_relu": "leakyrelu", "transposed": "deconv", "conv_transpose": "deconv",
    "batch_norm": "batchnorm", "bn": "batchnorm", "gap": "globalavgpool", "global_avg_pool": "globalavgpool",
    "depthwise_separable": "separable",
})


def parse_line(text: str, line: int) -> LayerSpec | None:
    """One line -> a LayerSpec, or None for a blank or comment line.

    Raises ``ValueError`` (without location; the caller adds file and line).
    """
    source = text.split("#", 1)[0].strip()
    if not source:
        return None
    tokens = source.split()
    word = tokens[0].lower()
    word = ALIASES.get(word, word)
    if word not in WORDS:
        near = difflib.get_close_matches(word, list(WORDS) + list(ALIASES), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        raise ValueError(f"unknown layer {tokens[0]!r}.{hint} Known layers: {', '.join(WORDS)}")
    spec = WORDS[word]
    positional = [t for t in tokens[1:] if "=" not in t]
    keyed = [t for t in tokens[1:] if "=" in t]
    usage = f" Usage: {spec.help}" if spec.help else f" Usage: {word} (takes no arguments)"
    n_required, n_optional = len(spec.positional), len(spec.optional_positional)
    if not n_required <= len(positional) <= n_required + n_optional:
        raise ValueError(f"{word} takes {n_required}{f' to {n_required + n_optional}' if n_optional else ''} "
                         f"values, got {len(positional)} ({' '.join(positional) or 'none'}).{usage}")
    args: dict[str, Any] = {}
    for (name, reader), token in zip(spec.positional, positional, strict=False):
        args[name] = reader(token, name)
    for index, (name, reader, default) in enumerate(spec.optional_positional):
        token_index = n_required + index
        args[name] = reader(positional[token_index], name) if token_index < len(positional) else default
    for name, (_, default) in spec.options.items():
        args[name] = default
    for token in keyed:
        key, _, value = token.partition("=")
        key = key.lower()
        if key not in spec.options:
            allowed = ", ".join(spec.options) or "none"
            raise ValueError(f"{word} has no option {key!r} (options: {allowed}).{usage}")
        args[key] = spec.options[key][0](value, key)
    if word in POOLS and args["stride"] is None:
        args["stride"] = args["size"]
    return LayerSpec(word, args, line, source)


def format_layer(layer: LayerSpec) -> str:
    """The canonical line for a layer: positional values, then only the options that differ from the defaults."""
    spec = WORDS[layer.kind]
    parts = [layer.kind]
    for name, _ in spec.positional:
        parts.append(_format_value(layer.args[name], name))
    for name, _, default in spec.optional_positional:
        if layer.args.get(name, default) != default:
            parts.append(_format_value(layer.args[name]))
    for name, (_, default) in spec.options.items():
        value = layer.args.get(name, default)
        if name == "stride" and layer.kind in POOLS:
            default = layer.args["size"]
        if value != default and not (name == "padding" and value == "valid"):
            parts.append(f"{name}={_format_value(value, name)}")
    return " ".join(parts)


def _format_value(value: Any, name: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        # kernels and pool sizes read as areas (5x5); strides, paddings, dilations as one number when square
        if name not in ("kernel", "size", "shape") and len(set(value)) == 1:
            return str(value[0])
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
