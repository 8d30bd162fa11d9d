"""Output shape of a layer, by its word's rule in :mod:`cnnkit.spec.words` (computed with :mod:`cnnkit.arith`; no torch).

Shapes leave out the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.
"""

from __future__ import annotations

from cnnkit.spec.grammar import LayerSpec
from cnnkit.spec.word import Shape, not_a_layer, same_shape
from cnnkit.spec.words import LAYER_WORDS

__all__ = ["ELEMENTWISE", "Shape", "output_shape"]

ELEMENTWISE = tuple(name for name, word in LAYER_WORDS.items() if word.shape is same_shape)  # (*) -> (*)


def output_shape(layer: LayerSpec, shape: Shape) -> Shape:
    """The shape ``layer`` produces from ``shape``; ``ValueError`` with the formula if it cannot.

    >>> output_shape(LayerSpec("conv", {"filters": 6, "kernel": (5, 5), "stride": (1, 1),
    ...     "padding": (0, 0), "dilation": (1, 1), "groups": 1, "bias": True}), (3, 32, 32))
    (6, 28, 28)
    """
    word = LAYER_WORDS.get(layer.kind)
    return (word.shape if word else not_a_layer)(layer, shape)
