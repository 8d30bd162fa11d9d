"""How a line of the layer-table format is read and written.

A line is ``WORD [positional ...] [key=value ...]  # comment``. This module
turns one line into a :class:`LayerSpec` and back, following each word's
grammar in the vocabulary (:mod:`cnnkit.spec.words`); it does no shape
arithmetic and imports no torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cnnkit.spec.readers import Pair, Reader, read_bool, read_float, read_int, read_padding, read_pair, read_shape
from cnnkit.spec.word import Word
from cnnkit.spec.words import ALIASES, POOLS, WORDS

__all__ = ["ALIASES", "POOLS", "WORDS", "LayerSpec", "Pair", "Reader", "SpecError", "Word", "format_layer", "parse_line",
           "read_bool", "read_float", "read_int", "read_padding", "read_pair", "read_shape"]


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
    for (name, reader, _), token in zip(spec.optional_positional, positional[n_required:], strict=False):
        args[name] = reader(token, name)
    for token in keyed:
        key, _, value = token.partition("=")
        key = key.lower()
        if key not in spec.options:
            allowed = ", ".join(spec.options) or "none"
            raise ValueError(f"{word} has no option {key!r} (options: {allowed}).{usage}")
        args[key] = spec.options[key][0](value, key)
    return LayerSpec(word, spec.complete(args), line, source)


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
        if name in spec.default_from:
            default = layer.args[spec.default_from[name]]
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
