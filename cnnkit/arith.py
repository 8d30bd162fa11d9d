"""Shape, parameter, multiply-accumulate and receptive-field arithmetic of CNN layers.

Pure Python, no torch: the one place where a formula lives. Layers, the spec
parser, the summary, the NumPy reference and the explanations all call it.

Every size function has a ``*_worked`` twin that returns, per spatial side, the
value together with the formula with the numbers filled in, as the slides write
it::

    >>> conv_output_size(32, 5)
    28
    >>> conv_output_worked(32, 5)[0].formula
    '(32 + 2*0 - 5)/1 + 1 = 28'

A configuration whose output would be empty raises ``ValueError`` naming the
formula with the numbers filled in and the received sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

Pair = tuple[int, int]
IntOrPair = int | Sequence[int]
PaddingArg = int | Sequence[int] | Literal["valid", "same"]

SIDES = ("height", "width")


@dataclass(frozen=True)
class Worked:
    """A computed number and the arithmetic that produced it."""

    value: int
    formula: str  # e.g. "(32 + 2*0 - 5)/1 + 1 = 28"


@dataclass(frozen=True)
class ParamCount:
    """Learnable parameters of one layer, split as the slides split them."""

    weights: int
    biases: int
    formula: str  # e.g. "(5*5*3 + 1)*6 = 456"

    @property
    def total(self) -> int:
        return self.weights + self.biases


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's output, in input pixels, per side (height, width)."""

    size: Pair  # how many input pixels one output cell sees
    jump: Pair  # distance in input pixels between neighbouring output cells


# ----------------------------------------------------------------------------- arguments


def pair(value: IntOrPair, name: str, *, minimum: int = 0) -> Pair:
    """Normalise an int or a 2-sequence of ints to ``(height, width)``.

    Raises ``TypeError`` for anything else and ``ValueError`` below ``minimum``.
    """
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int or a pair of ints. Received: {name}={value!r}")
    if isinstance(value, int):
        out = (value, value)
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"`{name}` must be an int or a pair of ints. Received: {name}={value!r}")
    if min(out) < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}. Received: {name}={value!r}")
    return out


def _fmt(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def _received(**kwargs: object) -> str:
    parts = []
    for key, value in kwargs.items():
        parts.append(f"{key}={_fmt(value) if isinstance(value, tuple) and len(value) == 2 else value}")
    return "Received: " + ", ".join(parts)


def _same_side(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-n // s)  # ceil(n / s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def same_padding(size: IntOrPair, kernel: IntOrPair, stride: IntOrPair = 1, dilation: IntOrPair = 1) -> tuple[Pair, Pair]:
    """Zero padding ``((top, bottom), (left, right))`` for "same" output ``ceil(n / s)``.

    The TensorFlow rule: total = max((ceil(n/s) - 1)*s + d*(k - 1) + 1 - n, 0),
    the odd pixel going after (bottom/right). With stride 1 this is
    ``d*(k - 1)`` whatever the input size (``(f - 1)/2`` a side for odd ``f``,
    as the slides say), the same as ``torch.nn.Conv2d(padding="same")``.
    """
    n, k, s, d = pair(size, "size", minimum=1), pair(kernel, "kernel", minimum=1), pair(stride, "stride", minimum=1), pair(dilation, "dilation", minimum=1)
    return _same_side(n[0], k[0], s[0], d[0]), _same_side(n[1], k[1], s[1], d[1])


def resolve_padding(
    padding: PaddingArg, size: IntOrPair, kernel: IntOrPair, stride: IntOrPair = 1, dilation: IntOrPair = 1
) -> tuple[Pair, Pair]:
    """Turn ``"valid"``, ``"same"``, an int or a pair into ``((top, bottom), (left, right))``."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return same_padding(size, kernel, stride, dilation)
        raise ValueError(f"`padding` must be an int, a pair, 'valid' or 'same'. Received: padding={padding!r}")
    p = pair(padding, "padding")
    return (p[0], p[0]), (p[1], p[1])


# ----------------------------------------------------------------------------- one side


def _division(numerator_text: str, numerator: int, s: int, ceil_mode: bool = False) -> tuple[str, int]:
    """``numerator/s`` as text and value, floor (or ceil) written only where it changes the result."""
    value = -(-numerator // s) if ceil_mode else numerator // s
    text = f"({numerator_text})/{s}"
    if numerator % s != 0:
        text = f"{'ceil' if ceil_mode else 'floor'}({text})"
    return text, value


def _window_side(
    n: int, k: int, s: int, pads: tuple[int, int], d: int, *, op: str, side: str, ceil_mode: bool = False
) -> Worked:
    """Output length of a sliding window along one side: floor((n + p_b + p_a - d(k-1) - 1)/s) + 1."""
    before, after = pads
    pad_text = f"2*{before}" if before == after else f"{before} + {after}"
    # without dilation, the slides' (n + 2p - f)/s + 1 is the same number as (n + 2p - d(f-1) - 1)/s + 1
    kernel_text = f"{k}" if d == 1 else f"{d}*({k} - 1) - 1"
    numerator = n + before + after - d * (k - 1) - 1
    division, quotient = _division(f"{n} + {pad_text} - {kernel_text}", numerator, s, ceil_mode)
    value = quotient + 1
    formula = f"{division} + 1"
    if ceil_mode and value > 1 and (value - 1) * s >= n + before:
        value -= 1
        formula += " - 1 (the last window would start in the padding)"
    formula += f" = {value}"
    if value <= 0:
        raise ValueError(
            f"{op} output {side} would be {formula}, which is not positive: the "
            f"{'dilated ' if d > 1 else ''}kernel ({d * (k - 1) + 1}) is larger than the padded input "
            f"({n + before + after}). Use more padding, padding='same', or a smaller kernel or stride. "
            + _received(input_size=n, kernel=k, stride=s, padding=pads if before != after else before, dilation=d)
        )
    return Worked(value, formula)


# ----------------------------------------------------------------------------- convolution


@overload
def conv_output_size(size: int, kernel: IntOrPair, stride: IntOrPair = ..., padding: PaddingArg = ..., dilation: IntOrPair = ...) -> int: ...
@overload
def conv_output_size(size: Sequence[int], kernel: IntOrPair, stride: IntOrPair = ..., padding: PaddingArg = ..., dilation: IntOrPair = ...) -> Pair: ...
def conv_output_size(
    size: IntOrPair, kernel: IntOrPair, stride: IntOrPair = 1, padding: PaddingArg = 0, dilation: IntOrPair = 1
) -> int | Pair:
    """Spatial output size of a convolution: ``floor((n + 2p - d(k-1) - 1)/s) + 1`` per side.

    ``size`` is an int (one side) or ``(H, W)``; the result has the same form.
    ``padding`` is an int, a pair, ``"valid"`` (0) or ``"same"`` (output ``ceil(n/s)``).
    """
    worked = conv_output_worked(size, kernel, stride, padding, dilation)
    return worked[0].value if isinstance(size, int) else (worked[0].value, worked[1].value)


def conv_output_worked(
    size: IntOrPair, kernel: IntOrPair, stride: IntOrPair = 1, padding: PaddingArg = 0, dilation: IntOrPair = 1, *, op: str = "convolution"
) -> tuple[Worked, Worked]:
    """Like :func:`conv_output_size`, with the filled-in formula for (height, width)."""
    n, k = pair(size, "size", minimum=1), pair(kernel, "kernel", minimum=1)
    s, d = pair(stride, "stride", minimum=1), pair(dilation, "dilation", minimum=1)
    pads = resolve_padding(padding, n, k, s, d)
    return (
        _window_side(n[0], k[0], s[0], pads[0], d[0], op=op, side="height"),
        _window_side(n[1], k[1], s[1], pads[1], d[1], op=op, side="width"),
    )


def conv_transpose_output_worked(
    size: IntOrPair,
    kernel: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> tuple[Worked, Worked]:
    """Transposed convolution, per side: ``(n - 1)*s - 2p + d(k - 1) + output_padding + 1``."""
    n, k = pair(size, "size", minimum=1), pair(kernel, "kernel", minimum=1)
    s, d = pair(stride, "stride", minimum=1), pair(dilation, "dilation", minimum=1)
    p, op = pair(padding, "padding"), pair(output_padding, "output_padding")
    result = []
    for i, side in enumerate(SIDES):
        if op[i] >= max(s[i], d[i]):
            raise ValueError(
                f"transposed convolution: `output_padding` ({op[i]}) must be smaller than the stride or the dilation "
                f"({max(s[i], d[i])}) along the {side}. "
                + _received(stride=s, dilation=d, output_padding=op)
            )
        kernel_text = f"({k[i]} - 1)" if d[i] == 1 else f"{d[i]}*({k[i]} - 1)"
        value = (n[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1
        formula = f"({n[i]} - 1)*{s[i]} - 2*{p[i]} + {kernel_text} + {op[i]} + 1 = {value}"
        if value <= 0:
            raise ValueError(
                f"transposed convolution output {side} would be {formula}, which is not positive: the padding "
                f"removes more than the layer produces. Use less padding. "
                + _received(input_size=n[i], kernel=k[i], stride=s[i], padding=p[i], output_padding=op[i], dilation=d[i])
            )
        result.append(Worked(value, formula))
    return result[0], result[1]


@overload
def conv_transpose_output_size(size: int, kernel: IntOrPair, stride: IntOrPair = ..., padding: IntOrPair = ...,
                               output_padding: IntOrPair = ..., dilation: IntOrPair = ...) -> int: ...
@overload
def conv_transpose_output_size(size: Sequence[int], kernel: IntOrPair, stride: IntOrPair = ..., padding: IntOrPair = ...,
                               output_padding: IntOrPair = ..., dilation: IntOrPair = ...) -> Pair: ...
def conv_transpose_output_size(
    size: IntOrPair,
    kernel: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> int | Pair:
    """Spatial output size of a transposed convolution (``int`` in, ``int`` out; pair in, pair out)."""
    worked = conv_transpose_output_worked(size, kernel, stride, padding, output_padding, dilation)
    return worked[0].value if isinstance(size, int) else (worked[0].value, worked[1].value)


# ----------------------------------------------------------------------------- pooling


def pool_output_worked(
    size: IntOrPair,
    kernel: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> tuple[Worked, Worked]:
    """Pooling output per side, PyTorch's rule; ``stride`` defaults to the pool size.

    floor (or ceil) ``((n + 2p - d(k-1) - 1)/s) + 1``; with ``ceil_mode`` a last
    window that would start in the right padding is dropped. Padding may be at
    most half the pool size.
    """
    k = pair(kernel, "kernel", minimum=1)
    s = k if stride is None else pair(stride, "stride", minimum=1)
    p, d, n = pair(padding, "padding"), pair(dilation, "dilation", minimum=1), pair(size, "size", minimum=1)
    for i, side in enumerate(SIDES):
        if p[i] > k[i] // 2:
            raise ValueError(
                f"pooling: `padding` ({p[i]}) must be at most half the pool size ({k[i]} // 2 = {k[i] // 2}) "
                f"along the {side}. " + _received(kernel=k, padding=p)
            )
    return (
        _window_side(n[0], k[0], s[0], (p[0], p[0]), d[0], op="pooling", side="height", ceil_mode=ceil_mode),
        _window_side(n[1], k[1], s[1], (p[1], p[1]), d[1], op="pooling", side="width", ceil_mode=ceil_mode),
    )


@overload
def pool_output_size(size: int, kernel: IntOrPair, stride: IntOrPair | None = ..., padding: IntOrPair = ...,
                     dilation: IntOrPair = ..., ceil_mode: bool = ...) -> int: ...
@overload
def pool_output_size(size: Sequence[int], kernel: IntOrPair, stride: IntOrPair | None = ..., padding: IntOrPair = ...,
                     dilation: IntOrPair = ..., ceil_mode: bool = ...) -> Pair: ...
def pool_output_size(
    size: IntOrPair,
    kernel: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> int | Pair:
    """Spatial output size of max/average/min pooling (``int`` in, ``int`` out; pair in, pair out)."""
    worked = pool_output_worked(size, kernel, stride, padding, dilation, ceil_mode)
    return worked[0].value if isinstance(size, int) else (worked[0].value, worked[1].value)


# ----------------------------------------------------------------------------- parameters


def _check_groups(in_channels: int, out_channels: int, groups: int, layer: str) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{layer}: `{name}` must be a positive int. Received: {name}={value!r}")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            raise ValueError(f"{layer}: `{name}` (={value}) must be divisible by `groups` (={groups}).")


def conv_params(in_channels: int, out_channels: int, kernel: IntOrPair, groups: int = 1, bias: bool = True) -> ParamCount:
    """Convolution: ``(kh*kw*C_in/groups + 1) * C_out`` (weights ``(C_out, C_in/g, kh, kw)``).

    The same count holds for a transposed convolution, whose weight is
    ``(C_in, C_out/g, kh, kw)``: both are ``kh*kw*C_in*C_out/g``.
    """
    _check_groups(in_channels, out_channels, groups, "convolution")
    kh, kw = pair(kernel, "kernel", minimum=1)
    per_filter = kh * kw * (in_channels // groups)
    weights = per_filter * out_channels
    biases = out_channels if bias else 0
    depth = f"{in_channels}" if groups == 1 else f"({in_channels}/{groups})"
    inner = f"{kh}*{kw}*{depth}"
    formula = f"({inner} + 1)*{out_channels}" if bias else f"{inner}*{out_channels}"
    return ParamCount(weights, biases, f"{formula} = {weights + biases}")


def dense_params(in_features: int, out_features: int, bias: bool = True) -> ParamCount:
    """Fully connected: ``(n_in + 1) * n_out``: one bias per output unit, not one per layer."""
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"dense: `{name}` must be a positive int. Received: {name}={value!r}")
    weights = in_features * out_features
    biases = out_features if bias else 0
    formula = f"({in_features} + 1)*{out_features}" if bias else f"{in_features}*{out_features}"
    return ParamCount(weights, biases, f"{formula} = {weights + biases}")


def separable_params(
    in_channels: int, out_channels: int, kernel: IntOrPair, depth_multiplier: int = 1, bias: bool = True
) -> ParamCount:
    """Depthwise-separable convolution: a ``k x k`` filter per input channel (no bias), then 1x1 to ``C_out``.

    ``kh*kw*C_in*M + (C_in*M + 1)*C_out``, the bias on the pointwise part only (as Keras).
    """
    _check_groups(in_channels, in_channels * depth_multiplier, in_channels, "separable convolution")
    kh, kw = pair(kernel, "kernel", minimum=1)
    mid = in_channels * depth_multiplier
    depthwise = kh * kw * mid
    pointwise = dense_params(mid, out_channels, bias)
    mid_text = f"{in_channels}" if depth_multiplier == 1 else f"{in_channels}*{depth_multiplier}"
    point_text = f"({mid} + 1)*{out_channels}" if bias else f"{mid}*{out_channels}"
    total = depthwise + pointwise.total
    return ParamCount(depthwise + pointwise.weights, pointwise.biases, f"{kh}*{kw}*{mid_text} + {point_text} = {total}")


def batchnorm_params(num_features: int, affine: bool = True) -> ParamCount:
    """Batch normalisation: a scale (gamma) and a shift (beta) per channel; running statistics are not learnt."""
    if not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"batchnorm: `num_features` must be a positive int. Received: num_features={num_features!r}")
    if not affine:
        return ParamCount(0, 0, "0 (affine=False)")
    return ParamCount(num_features, num_features, f"2*{num_features} = {2 * num_features}")


# ----------------------------------------------------------------------------- multiply-accumulates


def conv_macs(in_channels: int, out_channels: int, out_size: IntOrPair, kernel: IntOrPair, groups: int = 1) -> int:
    """Multiply-accumulates of a convolution: ``C_out*H_out*W_out * kh*kw*C_in/groups``."""
    _check_groups(in_channels, out_channels, groups, "convolution")
    (ho, wo), (kh, kw) = pair(out_size, "out_size", minimum=1), pair(kernel, "kernel", minimum=1)
    return out_channels * ho * wo * kh * kw * (in_channels // groups)


def conv_transpose_macs(in_channels: int, out_channels: int, in_size: IntOrPair, kernel: IntOrPair, groups: int = 1) -> int:
    """Multiply-accumulates of a transposed convolution: each input cell scatters through ``kh*kw*C_out/groups`` weights."""
    _check_groups(in_channels, out_channels, groups, "transposed convolution")
    (hi, wi), (kh, kw) = pair(in_size, "in_size", minimum=1), pair(kernel, "kernel", minimum=1)
    return in_channels * hi * wi * kh * kw * (out_channels // groups)


def dense_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a fully connected layer: ``n_in * n_out``."""
    return in_features * out_features


def grid_pool_bins(size: IntOrPair, grid: int) -> Pair:
    """Bins per side when a ``(C, H, W)`` map is average-pooled to a ``grid x grid`` grid: ``min(grid, side)``.

    A map smaller than the grid keeps its own size (no bin would be an
    average of anything new). ``grid_pool_bins((7, 7), 2) == (2, 2)``,
    ``grid_pool_bins((1, 1), 2) == (1, 1)``.
    """
    h, w = pair(size, "size", minimum=1)
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"`grid` must be an int >= 1. Received: grid={grid!r}")
    return (min(grid, h), min(grid, w))


def grid_pool_features(shape: Sequence[int], grid: int) -> int:
    """Features one layer output gives after grid pooling: ``C * min(grid, H) * min(grid, W)`` for ``(C, H, W)``, ``F`` for ``(F,)``.

    Shapes are without the batch. Any other rank is a ``ValueError`` naming it.
    """
    if len(shape) == 1:
        return int(shape[0])
    if len(shape) != 3:
        raise ValueError(f"grid pooling takes a (C, H, W) map or (F,) features. Received: shape={tuple(shape)}")
    bins = grid_pool_bins((int(shape[1]), int(shape[2])), grid)
    return int(shape[0]) * bins[0] * bins[1]


# ----------------------------------------------------------------------------- receptive field


def receptive_fields(
    layers: Sequence[tuple[IntOrPair, IntOrPair, IntOrPair]], start: ReceptiveField | None = None
) -> list[ReceptiveField]:
    """Receptive field and jump after each layer of a chain of ``(kernel, stride, dilation)``.

    ``r_out = r_in + d*(k - 1)*j_in`` and ``j_out = j_in * s``, starting from a
    single input pixel (``r = 1``, ``j = 1``). Layers that do not look at
    neighbours (activations, batch norm) are ``(1, 1, 1)``.
    """
    current = start or ReceptiveField((1, 1), (1, 1))
    out = []
    for kernel, stride, dilation in layers:
        k, s, d = pair(kernel, "kernel", minimum=1), pair(stride, "stride", minimum=1), pair(dilation, "dilation", minimum=1)
        size = (current.size[0] + d[0] * (k[0] - 1) * current.jump[0], current.size[1] + d[1] * (k[1] - 1) * current.jump[1])
        current = ReceptiveField(size, (current.jump[0] * s[0], current.jump[1] * s[1]))
        out.append(current)
    return out



class Span:
    """Along one side, the input pixels that output cell ``o`` of a tensor sees: ``first(o)`` to ``last(o)``.

    Built layer by layer from the input (``Span()``: cell ``o`` sees pixel
    ``o``): ``Span.window`` for a convolution or pooling window (``padding`` is
    what it adds before the first cell), ``Span.transposed`` for a transposed
    convolution, ``Span.union`` where paths meet (a residual sum, a U-Net
    concatenation). Positions run on an unbounded line: borders are left out,
    as in the chain formula, which this agrees with on chains
    (:func:`receptive_fields`). After an upsampling, neighbouring cells share
    their source cells, so the field depends on the cell: :meth:`size` is the
    largest over all cells.

    >>> conv = Span().window(3, 1, 1)
    >>> skip = Span().union(conv.window(3, 1, 1))  # relu(F(x) + x) with two 3x3 convolutions
    >>> skip.size(), skip.jump()
    (5, 1)
    >>> up = Span().window(2, 2).window(2, 2).transposed(2, 2)  # pool twice, then a 2x2/2 transposed conv
    >>> up.size(), up.jump(), up.window(3, 1, 1).size()  # a 3x3 after it sees up to two pooled cells
    (4, 2, 8)
    """

    def __init__(self, parents: Sequence[Span] = (), step: tuple[int, int, int, int, bool] | None = None) -> None:
        self._parents = tuple(parents)
        self._step = step  # (kernel, stride, padding, dilation, transposed); None: the input, or a union
        self._memo: dict[int, tuple[int, int] | None] = {}
        self.period: int  # cells repeat their pattern (shifted by period * jump) every this many cells
        if step is None:
            self.period = math.lcm(*(p.period for p in self._parents)) if self._parents else 1
        else:
            parent, stride, transposed = self._parents[0].period, step[1], step[4]
            self.period = parent * stride if transposed else parent // math.gcd(parent, stride)

    def window(self, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> Span:
        """After a convolution or pooling: cell ``o`` covers cells ``o*s - p + d*t``, ``t = 0..k-1``, of this one."""
        return Span((self,), (kernel, stride, padding, dilation, False))

    def transposed(self, kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> Span:
        """After a transposed convolution: cell ``o`` gets the cells ``i`` with ``o = i*s - p + d*t``."""
        return Span((self,), (kernel, stride, padding, dilation, True))

    def union(self, *others: Span) -> Span:
        """Where paths of the same layout meet: each cell sees what it sees on any of them."""
        return Span((self, *others))

    def cells(self, o: int) -> tuple[int, int] | None:
        """``(first, last)`` input pixel that cell ``o`` sees; None where it sees none (a transposed conv's gap)."""
        if o not in self._memo:
            self._memo[o] = self._cells(o)
        return self._memo[o]

    def _cells(self, o: int) -> tuple[int, int] | None:
        if not self._parents:
            return o, o
        if self._step is None:
            seen = [c for c in (p.cells(o) for p in self._parents) if c is not None]
            return (min(c[0] for c in seen), max(c[1] for c in seen)) if seen else None
        kernel, stride, padding, dilation, transposed = self._step
        if transposed:
            sources = [(o + padding - dilation * t) // stride for t in range(kernel)
                       if (o + padding - dilation * t) % stride == 0]
        else:
            sources = [o * stride - padding + dilation * t for t in range(kernel)]
        seen = [c for c in (self._parents[0].cells(i) for i in sources) if c is not None]
        return (min(c[0] for c in seen), max(c[1] for c in seen)) if seen else None

    def size(self) -> int:
        """The most input pixels one cell sees, over every cell (cells repeat their pattern every ``period``)."""
        spans = [c[1] - c[0] + 1 for c in (self.cells(o) for o in range(self.period)) if c is not None]
        return max(spans) if spans else 0

    def jump(self) -> int | None:
        """Input pixels between neighbouring cells (on average over a period); None where not a whole number."""
        start, end = self.cells(0), self.cells(self.period)
        if start is None or end is None or (end[0] - start[0]) % self.period:
            return None
        return (end[0] - start[0]) // self.period
