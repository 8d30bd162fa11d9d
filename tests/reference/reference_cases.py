"""The pairing of every ``cnnkit.reference`` op with its torch twin, by name, and the cases to run them on.

``PAIRS[name]`` gives the reference forward, its backward, the torch twin and
which array arguments get a gradient (in the order the backward returns them).
``CASES`` lists argument sets: array arguments by kind and shape (built afresh
from a seed by :func:`make_arrays`) plus plain keyword arguments. Both test
files (agreement with torch, finite differences) run over the same cases.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnkit import reference as R
from cnnkit.layers import Conv2dSame, Maxout, MinPool2d

DROPOUT_SEED = 1234


def _torch_conv2d(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: Any = 1,
                  padding: Any = 0, dilation: Any = 1, groups: int = 1) -> torch.Tensor:
    if padding != "same" or stride in (1, (1, 1)):
        return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
    # torch refuses padding="same" with a stride; cnnkit's Conv2dSame is the twin there (TensorFlow's rule)
    o, c, kh, kw = weight.shape
    layer = Conv2dSame(c * groups, o, (kh, kw), stride, "same", dilation, groups, bias is not None).double()
    params = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return torch.func.functional_call(layer, params, (input,))


def _torch_min_pool2d(input: torch.Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False) -> torch.Tensor:
    return MinPool2d(kernel_size, stride, padding, ceil_mode)(input)


def _torch_maxout(input: torch.Tensor, pieces: int) -> torch.Tensor:
    return Maxout(pieces)(input)


def _torch_dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, *, mask: Any = None) -> torch.Tensor:
    # the reference receives `mask`, the one torch draws under this seed (see make_arrays)
    torch.manual_seed(DROPOUT_SEED)
    return F.dropout(input, p, training)


@dataclass(frozen=True)
class Pair:
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    twin: Callable[..., Any]
    grads: tuple[str, ...]  # array arguments whose gradients the backward returns, in order


PAIRS: dict[str, Pair] = {
    "conv2d": Pair(R.conv2d, R.conv2d_backward, _torch_conv2d, ("input", "weight", "bias")),
    "conv_transpose2d": Pair(R.conv_transpose2d, R.conv_transpose2d_backward, F.conv_transpose2d, ("input", "weight", "bias")),
    "max_pool2d": Pair(R.max_pool2d, R.max_pool2d_backward, F.max_pool2d, ("input",)),
    "avg_pool2d": Pair(R.avg_pool2d, R.avg_pool2d_backward, F.avg_pool2d, ("input",)),
    "min_pool2d": Pair(R.min_pool2d, R.min_pool2d_backward, _torch_min_pool2d, ("input",)),
    "adaptive_avg_pool2d": Pair(R.adaptive_avg_pool2d, R.adaptive_avg_pool2d_backward, F.adaptive_avg_pool2d, ("input",)),
    "relu": Pair(R.relu, R.relu_backward, F.relu, ("input",)),
    "leaky_relu": Pair(R.leaky_relu, R.leaky_relu_backward, F.leaky_relu, ("input",)),
    "elu": Pair(R.elu, R.elu_backward, F.elu, ("input",)),
    "sigmoid": Pair(R.sigmoid, R.sigmoid_backward, torch.sigmoid, ("input",)),
    "tanh": Pair(R.tanh, R.tanh_backward, torch.tanh, ("input",)),
    "maxout": Pair(R.maxout, R.maxout_backward, _torch_maxout, ("input",)),
    "softmax": Pair(R.softmax, R.softmax_backward, F.softmax, ("input",)),
    "log_softmax": Pair(R.log_softmax, R.log_softmax_backward, F.log_softmax, ("input",)),
    "linear": Pair(R.linear, R.linear_backward, F.linear, ("input", "weight", "bias")),
    "flatten": Pair(R.flatten, R.flatten_backward, torch.flatten, ("input",)),
    "dropout": Pair(R.dropout, R.dropout_backward, _torch_dropout, ("input",)),
    "batch_norm": Pair(R.batch_norm, R.batch_norm_backward, F.batch_norm, ("input", "weight", "bias")),
    "cross_entropy": Pair(R.cross_entropy, R.cross_entropy_backward, F.cross_entropy, ("input",)),
    "mse_loss": Pair(R.mse_loss, R.mse_loss_backward, F.mse_loss, ("input", "target")),
    "pad": Pair(R.pad, R.pad_backward, F.pad, ("input",)),
    "unfold": Pair(R.unfold, R.unfold_backward, F.unfold, ("input",)),
}


# ----------------------------------------------------------------------------- array specifications


@dataclass(frozen=True)
class Normal:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Positive:
    """Uniform in [0.5, 2): variances."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class Classes:
    """Integer class indices in [0, classes)."""

    shape: tuple[int, ...]
    classes: int


@dataclass(frozen=True)
class TorchDropoutMask:
    """The keep-mask torch's dropout draws for this shape and ``p`` under ``DROPOUT_SEED``."""

    shape: tuple[int, ...]
    p: float


Spec = Normal | Positive | Classes | TorchDropoutMask


@dataclass(frozen=True)
class Case:
    op: str
    arrays: dict[str, Spec]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        shapes = ",".join("x".join(map(str, spec.shape)) for spec in self.arrays.values())
        options = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.op}[{shapes}|{options}]"

    def size(self) -> int:
        return sum(int(np.prod(spec.shape)) for spec in self.arrays.values())


def make_arrays(case: Case, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for name, spec in case.arrays.items():
        if isinstance(spec, Normal):
            arrays[name] = rng.standard_normal(spec.shape)
        elif isinstance(spec, Positive):
            arrays[name] = rng.uniform(0.5, 2.0, spec.shape)
        elif isinstance(spec, Classes):
            arrays[name] = rng.integers(0, spec.classes, spec.shape)
        else:
            torch.manual_seed(DROPOUT_SEED)
            arrays[name] = (F.dropout(torch.ones(spec.shape, dtype=torch.float64), spec.p) != 0).numpy()
    return arrays


# ----------------------------------------------------------------------------- cases


def _conv_cases() -> list[Case]:
    cases = []
    layouts = [  # (N, C_in, H, W, C_out, kernel)
        (2, 4, 9, 8, 6, 3),
        (1, 3, 7, 7, 3, (2, 3)),
        (3, 2, 6, 10, 4, 1),
        (1, 6, 12, 11, 6, 5),
    ]
    options = itertools.product([1, 2, (2, 1)], [0, 1, (2, 0), "valid", "same"], [1, 2], [1, 2, 3])
    for (n, c, h, w, o, k), (stride, padding, dilation, groups) in itertools.product(layouts, options):
        kernel = (k, k) if isinstance(k, int) else k
        if c % groups or o % groups:
            continue
        span = [dilation * (kk - 1) + 1 for kk in kernel]
        pads = (0, 0) if padding in ("valid", "same") else ((padding, padding) if isinstance(padding, int) else padding)
        if padding != "same" and (h + 2 * pads[0] < span[0] or w + 2 * pads[1] < span[1]):
            continue
        for bias in (True, False) if groups == 1 else (True,):
            arrays: dict[str, Spec] = {"input": Normal((n, c, h, w)), "weight": Normal((o, c // groups, *kernel))}
            if bias:
                arrays["bias"] = Normal((o,))
            cases.append(Case("conv2d", arrays, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}))
    # depthwise with a channel multiplier
    cases.append(Case("conv2d", {"input": Normal((2, 3, 8, 8)), "weight": Normal((6, 1, 3, 3)), "bias": Normal((6,))},
                      {"stride": 2, "padding": 1, "groups": 3}))
    # tiny ones, the smallest of the op, so that the finite-difference checks see strides, dilations and groups
    for stride, padding, dilation, groups in [(2, 1, 1, 1), (1, "same", 2, 1), ((2, 1), (1, 0), 1, 2), (2, "same", 1, 1)]:
        arrays = {"input": Normal((1, 2, 5, 4)), "weight": Normal((2, 2 // groups, 3, 2)), "bias": Normal((2,))}
        cases.append(Case("conv2d", arrays, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}))
    return cases


def _conv_transpose_cases() -> list[Case]:
    cases = []
    layouts = [(2, 4, 5, 4, 6, 3), (1, 3, 4, 4, 3, (2, 3)), (2, 2, 3, 5, 4, 1)]
    options = [  # (stride, padding, output_padding, dilation, groups)
        (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (2, 0, 1, 2, 1), ((2, 3), (1, 0), (1, 2), 1, 1), (3, 1, 0, 1, 1),
        (1, 0, 1, 2, 1), (2, 1, 0, 1, 2), (1, 0, 0, 2, 2), (2, 0, 1, 1, 2),
    ]
    for (n, c, h, w, o, k), (stride, padding, output_padding, dilation, groups) in itertools.product(layouts, options):
        if c % groups or o % groups:
            continue
        kernel = (k, k) if isinstance(k, int) else k
        pad = (padding, padding) if isinstance(padding, int) else padding
        if any((size - 1) * (stride if isinstance(stride, int) else stride[i]) - 2 * pad[i] + dilation * (kernel[i] - 1) + 1 < 1
               for i, size in enumerate((h, w))):
            continue
        arrays: dict[str, Spec] = {"input": Normal((n, c, h, w)), "weight": Normal((c, o // groups, *kernel)), "bias": Normal((o,))}
        cases.append(Case("conv_transpose2d", arrays, {"stride": stride, "padding": padding, "output_padding": output_padding,
                                                       "groups": groups, "dilation": dilation}))
    for stride, padding, output_padding, dilation, groups in [(2, 1, 1, 1, 1), (1, 0, 1, 2, 1), (2, 0, 1, 1, 2), ((2, 3), (1, 0), (1, 2), 1, 1)]:
        arrays = {"input": Normal((1, 2, 3, 3)), "weight": Normal((2, 2 // groups, 3, 2)), "bias": Normal((2,))}
        cases.append(Case("conv_transpose2d", arrays, {"stride": stride, "padding": padding, "output_padding": output_padding,
                                                       "groups": groups, "dilation": dilation}))
    return cases


def _pool_cases() -> list[Case]:
    cases = []
    shapes = [(2, 3, 8, 8), (1, 2, 7, 9), (2, 1, 5, 6)]
    options = [  # (kernel_size, stride, padding, dilation, ceil_mode)
        (2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), ((2, 3), (1, 2), (1, 0), 1, False),
        (2, 1, 0, 1, True), (3, 3, 0, 1, True), (2, 2, 1, 2, False), (3, 1, 1, 2, True),
    ]
    for shape, (k, s, p, d, ceil) in itertools.product(shapes, options):
        arrays: dict[str, Spec] = {"input": Normal(shape)}
        base = {"kernel_size": k, "stride": s, "padding": p}
        cases.append(Case("max_pool2d", arrays, {**base, "dilation": d, "ceil_mode": ceil}))
        if d == 1:
            cases.append(Case("min_pool2d", arrays, {**base, "ceil_mode": ceil}))
            for include in (True, False):
                cases.append(Case("avg_pool2d", arrays, {**base, "ceil_mode": ceil, "count_include_pad": include}))
    cases.append(Case("avg_pool2d", {"input": Normal((1, 2, 6, 6))}, {"kernel_size": 3, "stride": 2, "padding": 1, "divisor_override": 4}))
    for shape, out in itertools.product(shapes, [1, 3, (2, 5), (None, 4), 8]):
        cases.append(Case("adaptive_avg_pool2d", {"input": Normal(shape)}, {"output_size": out}))
    return cases


def _activation_cases() -> list[Case]:
    cases = []
    shapes = [(2, 3, 4, 5), (7, 6), (3,)]
    for shape in shapes:
        x: dict[str, Spec] = {"input": Normal(shape)}
        cases += [Case("relu", x), Case("sigmoid", x), Case("tanh", x), Case("leaky_relu", x), Case("elu", x),
                  Case("leaky_relu", x, {"negative_slope": 0.2}), Case("elu", x, {"alpha": 0.5})]
        for dim in range(len(shape)):
            cases += [Case("softmax", x, {"dim": dim}), Case("log_softmax", x, {"dim": dim})]
        cases.append(Case("softmax", x, {"dim": -1}))
    for shape, pieces in [((2, 6, 3, 3), 2), ((2, 6, 3, 3), 3), ((4, 8), 4), ((3, 5), 1), ((2, 6, 4), 6)]:
        cases.append(Case("maxout", {"input": Normal(shape)}, {"pieces": pieces}))
    return cases


def _dense_cases() -> list[Case]:
    cases = []
    for lead, n_in, n_out in [((4,), 5, 3), ((2, 3), 6, 4), ((), 3, 2), ((8,), 64, 10)]:
        arrays: dict[str, Spec] = {"input": Normal((*lead, n_in)), "weight": Normal((n_out, n_in))}
        cases.append(Case("linear", arrays))
        cases.append(Case("linear", {**arrays, "bias": Normal((n_out,))}))
    for shape, start, end in [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 0, -1), ((2, 3, 4, 5), 2, 3), ((2, 3, 4, 5), 1, 2), ((6,), 0, 0)]:
        cases.append(Case("flatten", {"input": Normal(shape)}, {"start_dim": start, "end_dim": end}))
    for shape, p in [((4, 10), 0.5), ((2, 3, 4, 4), 0.2), ((5, 7), 0.0), ((3, 3), 1.0)]:
        cases.append(Case("dropout", {"input": Normal(shape), "mask": TorchDropoutMask(shape, p)}, {"p": p, "training": True}))
    cases.append(Case("dropout", {"input": Normal((4, 5)), "mask": TorchDropoutMask((4, 5), 0.5)}, {"p": 0.5, "training": False}))
    return cases


def _norm_and_loss_cases() -> list[Case]:
    cases = []
    for shape in [(4, 3, 5, 5), (6, 4), (3, 2, 7)]:
        c = shape[1]
        stats: dict[str, Spec] = {"running_mean": Normal((c,)), "running_var": Positive((c,))}
        affine: dict[str, Spec] = {"weight": Normal((c,)), "bias": Normal((c,))}
        for training in (True, False):
            cases.append(Case("batch_norm", {"input": Normal(shape), **stats, **affine}, {"training": training, "momentum": 0.3, "eps": 1e-3}))
            cases.append(Case("batch_norm", {"input": Normal(shape), **stats}, {"training": training}))
    for shape in [(5, 4), (3, 10), (2, 3, 4, 4)]:
        target_shape = (shape[0], *shape[2:])
        arrays: dict[str, Spec] = {"input": Normal(shape), "target": Classes(target_shape, shape[1])}
        for reduction in ("mean", "sum", "none"):
            cases.append(Case("cross_entropy", arrays, {"reduction": reduction}))
        cases.append(Case("cross_entropy", {**arrays, "weight": Positive((shape[1],))}, {"reduction": "mean"}))
        cases.append(Case("cross_entropy", arrays, {"label_smoothing": 0.1}))
        cases.append(Case("cross_entropy", {**arrays, "weight": Positive((shape[1],))}, {"reduction": "mean", "label_smoothing": 0.2}))
        cases.append(Case("cross_entropy", {**arrays, "weight": Positive((shape[1],))}, {"reduction": "none", "label_smoothing": 0.2}))
    for shape in [(4, 3), (2, 3, 4, 4), (5,)]:
        for reduction in ("mean", "sum", "none"):
            cases.append(Case("mse_loss", {"input": Normal(shape), "target": Normal(shape)}, {"reduction": reduction}))
    return cases


def _window_cases() -> list[Case]:
    cases = []
    for shape, pads in [((2, 3, 4, 5), (1, 2)), ((2, 3, 4, 5), (1, 0, 2, 3)), ((3, 4), (0, 1, 2, 0)), ((2, 2, 3, 3), (1, 1, 1, 1, 1, 0))]:
        cases.append(Case("pad", {"input": Normal(shape)}, {"pad": pads}))
    cases.append(Case("pad", {"input": Normal((1, 1, 3, 3))}, {"pad": (1, 1, 1, 1), "value": 2.5}))
    for shape, k, d, p, s in [((2, 3, 6, 7), 3, 1, 0, 1), ((1, 2, 7, 7), (2, 3), 1, 1, 2), ((2, 1, 8, 6), 3, 2, (1, 0), (1, 2)), ((1, 1, 4, 4), 1, 1, 0, 1)]:
        cases.append(Case("unfold", {"input": Normal(shape)}, {"kernel_size": k, "dilation": d, "padding": p, "stride": s}))
    return cases


CASES: list[Case] = (
    _conv_cases() + _conv_transpose_cases() + _pool_cases() + _activation_cases() + _dense_cases() + _norm_and_loss_cases()
    + _window_cases()
)
