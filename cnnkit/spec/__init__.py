"""The layer-table format: a network written one layer a line, as the slides write it.

::

    input 3x32x32              # channels x height x width
    conv 6 5x5                 # filters, kernel; stride=1 padding=0 unless given
    relu
    maxpool 2x2 stride=2       # stride defaults to the pool size
    flatten
    dense 10

``load``/``parse`` read and check a table (no torch needed); ``build`` makes the
``torch.nn.Sequential`` and ``to_text`` writes one back. Each layer word (its
grammar, shape rule, torch module and read-back) is defined once, in
:mod:`cnnkit.spec.words`.
"""

from __future__ import annotations

from typing import Any

from cnnkit.spec.grammar import WORDS, LayerSpec, SpecError, format_layer
from cnnkit.spec.table import Spec, load, load_shipped, parse, parse_input_shape, shipped_tables

__all__ = ["WORDS", "LayerSpec", "Spec", "SpecError", "build", "format_layer", "load", "load_shipped", "parse",
           "parse_input_shape", "shipped_tables", "to_text"]


def __getattr__(name: str) -> Any:
    # build/to_text need torch; reading a table does not
    if name in ("build", "to_text"):
        from cnnkit.spec import torch_io

        return getattr(torch_io, name)
    raise AttributeError(f"module 'cnnkit.spec' has no attribute {name!r}")
