"""Activations, softmax and a fully connected layer, worked number by number.

Every value comes from :mod:`cnnkit.reference` (``relu``, ``leaky_relu``, ``elu``,
``sigmoid``, ``tanh``, ``maxout``, ``softmax``, ``linear``); this module writes out the
formula of each cell with its numbers, as the slides write them:

    ReLU ``max(0, x)``; leaky ReLU ``max(0.1x, x)`` (slope 0.1 on the slides, 0.01 in torch);
    ELU ``x`` for ``x > 0`` else ``alpha*(e^x - 1)``; sigmoid ``1/(1 + e^-x)``;
    tanh ``(e^x - e^-x)/(e^x + e^-x)``; maxout ``max(z_1, ..., z_K)`` over ``K`` pieces;
    softmax ``e^(x_i - m) / sum_j e^(x_j - m)`` with ``m = max x``; dense ``y = W x + b``.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit import arith
from cnnkit import reference as R
from cnnkit.explain.matrices import number, parse_matrix, to_lists
from cnnkit.explain.steps import term
from cnnkit.explain.working import Calculation

ACTIVATIONS = ("relu", "leakyrelu", "elu", "sigmoid", "tanh", "softmax", "maxout")
SLIDES_LEAKY_SLOPE = 0.1  # the slides' max(0.1x, x)


def _g(value: float) -> str:
    return f"{number(value):g}"


def _p(value: float) -> str:
    """A number as an operand: negatives in brackets."""
    return f"({_g(value)})" if value < 0 else _g(value)


def _exp(value: float) -> float:
    # the text shows e^x of the user's numbers; beyond float64's range it reads "inf", the value itself is computed stably
    return math.exp(value) if value < 709 else math.inf


def _cell(name: str, x: float, y: float, slope: float, alpha: float) -> str:
    if name == "relu":
        return f"max(0, {_g(x)}) = {_g(y)}"
    if name == "leakyrelu":
        return f"{_g(x)} > 0, so {_g(y)}" if x > 0 else f"{_g(slope)}*{_p(x)} = {_g(y)}"
    if name == "elu":
        return f"{_g(x)} > 0, so {_g(y)}" if x > 0 else f"{_g(alpha)}*(e^{_p(x)} - 1) = {_g(alpha)}*({_exp(x):.6g} - 1) = {_g(y)}"
    if name == "sigmoid":
        return f"1/(1 + e^-{_p(x)}) = 1/(1 + {_exp(-x):.6g}) = {_g(y)}"
    # tanh
    return (f"(e^{_p(x)} - e^-{_p(x)})/(e^{_p(x)} + e^-{_p(x)}) = ({_exp(x):.6g} - {_exp(-x):.6g})/({_exp(x):.6g} + "
            f"{_exp(-x):.6g}) = {_g(y)}")


def _check_name(name: str) -> str:
    key = name.lower().replace("_", "").replace("-", "")
    if key not in ACTIVATIONS:
        near = difflib.get_close_matches(key, ACTIVATIONS, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise ValueError(f"unknown activation.{hint} Known: {', '.join(ACTIVATIONS)}. Received: name={name!r}")
    return key


def explain_activation(
    name: str, input: str | npt.ArrayLike, *, slope: float = SLIDES_LEAKY_SLOPE, alpha: float = 1.0, pieces: int = 2
) -> Calculation:
    """Apply an activation to a matrix (or a row vector ``"1 -2 3"``), writing every cell's formula with its numbers.

    Elementwise ones keep the shape ``(H, W) -> (H, W)``. ``softmax`` works along each row.
    ``maxout`` takes the maximum over each run of ``pieces`` consecutive entries of a row, the
    outputs ``z_k = w_k^T x + b_k`` of its ``K`` linear pieces: ``(H, W) -> (H, W/pieces)``.
    ``slope`` is leaky ReLU's negative slope (0.1, the slides' value, by default); ``alpha`` ELU's.
    """
    key = _check_name(name)
    for arg, value in (("slope", slope), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise TypeError(f"`{arg}` must be a finite number. Received: {arg}={value!r}")
    if key == "softmax":
        return explain_softmax(input)
    x = parse_matrix(input, "input")
    if key == "maxout":
        return _maxout(x, pieces)
    outputs = {"relu": lambda: R.relu(x), "leakyrelu": lambda: R.leaky_relu(x, slope), "elu": lambda: R.elu(x, alpha),
               "sigmoid": lambda: R.sigmoid(x), "tanh": lambda: R.tanh(x)}
    y = outputs[key]()
    steps = [{"label": f"[{i},{j}]", "row": i, "col": j, "input": number(float(x[i, j])), "value": number(float(y[i, j])),
              "expression": _cell(key, float(x[i, j]), float(y[i, j]), slope, alpha)} for (i, j) in np.ndindex(*x.shape)]
    formulas = {
        "relu": "max(0, x)",
        "leakyrelu": f"x for x > 0, else {_g(slope)}*x (the slides' max({_g(slope)}x, x) for a slope below 1)",
        "elu": f"x for x > 0, else {_g(alpha)}*(e^x - 1)",
        "sigmoid": "1/(1 + e^-x)",
        "tanh": "(e^x - e^-x)/(e^x + e^-x)",
    }
    parameters = {"leakyrelu": {"slope": slope}, "elu": {"alpha": alpha}}.get(key, {})
    notes = [f"{key}(x) = {formulas[key]}, cell by cell; the shape is kept"]
    if key == "leakyrelu" and slope == SLIDES_LEAKY_SLOPE:
        notes.append("slope 0.1 as on the slides; torch.nn.LeakyReLU defaults to 0.01")
    return Calculation("activation", f"{key}: {x.shape[0]}x{x.shape[1]} input", {"input": to_lists(x), "name": key, **parameters},
                       to_lists(y), steps, notes)


def _maxout(x: np.ndarray, pieces: int) -> Calculation:
    if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1 or x.shape[1] % pieces:
        raise ValueError(
            f"maxout: `pieces` must be a positive int dividing the row length ({x.shape[1]}), each run of `pieces` "
            f"entries being the outputs of one unit's linear pieces. Received: pieces={pieces!r}, input shape={x.shape}"
        )
    y = R.maxout(x, pieces)  # rows as the batch, entries as channels: (H, W) -> (H, W/pieces)
    steps = []
    for (i, j), value in np.ndenumerate(y):
        group = x[i, j * pieces : (j + 1) * pieces]
        steps.append({"label": f"[{i},{j}]", "row": i, "col": j, "pieces": [number(v) for v in group], "value": number(value),
                      "expression": f"max({', '.join(_g(v) for v in group)}) = {_g(value)}"})
    note = (f"maxout: max(w_1^T x + b_1, ..., w_K^T x + b_K) with K = {pieces}; each run of {pieces} consecutive entries "
            f"of a row holds one unit's pieces z_k = w_k^T x + b_k, so each row shrinks from {x.shape[1]} to {y.shape[1]}")
    return Calculation("activation", f"maxout, {pieces} pieces: {x.shape[0]}x{x.shape[1]} input",
                       {"input": to_lists(x), "name": "maxout", "pieces": pieces}, to_lists(y), steps, [note])


def _vector(value: str | npt.ArrayLike, name: str) -> np.ndarray:
    """A 1-D array from a row or a column matrix (``"1 2 3"`` or ``"1; 2; 3"``) or a 1-D array."""
    if not isinstance(value, str):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 1 and array.size:
            value = array[None]
    matrix = parse_matrix(value, name)
    if 1 not in matrix.shape:
        raise ValueError(f"`{name}` must be a vector (one row or one column). Received: {name} shape={matrix.shape}")
    return matrix.ravel()


def explain_softmax(input: str | npt.ArrayLike) -> Calculation:
    """Softmax of each row: the maximum subtracted, the exponentials, their sum, each probability.

    ``p_i = e^(x_i - m) / sum_j e^(x_j - m)`` with ``m = max_j x_j``: the same number as
    ``e^(x_i) / sum_j e^(x_j)`` (the factor ``e^-m`` cancels), but no ``e^x`` can overflow.
    """
    x = parse_matrix(input, "input")
    y = R.softmax(x, dim=1)
    steps: list[dict[str, Any]] = []
    for i, row in enumerate(x):
        m = row.max()
        e = np.exp(row - m)
        total = e.sum()
        where = f"row {i}: " if x.shape[0] > 1 else ""
        steps.append({"label": f"{where}max", "expression": f"m = max({', '.join(_g(v) for v in row)}) = {_g(m)}"})
        steps.append({"label": f"{where}exponentials",
                      "expression": ", ".join(f"e^({_g(v)} - {_p(m)}) = {w:.6g}" for v, w in zip(row, e, strict=True))})
        steps.append({"label": f"{where}sum", "expression": f"{' + '.join(f'{w:.6g}' for w in e)} = {total:.6g}"})
        for j, (w, p) in enumerate(zip(e, y[i], strict=True)):
            steps.append({"label": f"{where}p_{j}", "row": i, "col": j, "value": float(p),
                          "expression": f"{w:.6g}/{total:.6g} = {p:.6g}"})
    notes = ["subtracting the maximum m changes nothing, e^(x_i - m)/sum_j e^(x_j - m) = e^x_i/sum_j e^x_j, but keeps "
             "e^x from overflowing (e^1000 is inf in float64); the probabilities of a row add up to 1"]
    title = f"softmax: {x.shape[0]}x{x.shape[1]} input, along each row" if x.shape[0] > 1 else f"softmax of {x.shape[1]} values"
    output = [float(p) for p in y[0]] if x.shape[0] == 1 else [[float(p) for p in row] for row in y]
    return Calculation("softmax", title, {"input": to_lists(x)}, output, steps, notes)


def explain_dense(input: str | npt.ArrayLike, weights: str | npt.ArrayLike, bias: str | npt.ArrayLike | None = None) -> Calculation:
    """A fully connected layer ``y = W x + b``: each output unit's weighted sum written out.

    ``x`` has ``n_in`` values, ``W`` is ``(n_out, n_in)`` (one row per output unit, as torch's
    ``Linear.weight``) and ``b`` has ``n_out`` values (one bias per unit; none when omitted).
    """
    x, w = _vector(input, "input"), parse_matrix(weights, "weights")
    b = None if bias is None else _vector(bias, "bias")
    if w.shape[1] != x.size:
        raise ValueError(
            f"`weights` must have one column per input value ({x.size}), one row per output unit. "
            f"Received: weights shape={w.shape}, input size={x.size}"
        )
    if b is not None and b.size != w.shape[0]:
        raise ValueError(f"`bias` must have one value per output unit ({w.shape[0]}). Received: bias size={b.size}")
    y = R.linear(x, w, b)
    steps = []
    for k, value in enumerate(y):
        terms = " + ".join(term(xv, wv) for xv, wv in zip(x, w[k], strict=True))
        with_bias = "" if b is None else f" + {_p(b[k])}"
        steps.append({"label": f"y_{k}", "unit": k, "value": number(value), "expression": f"{terms}{with_bias} = {_g(value)}"})
    params = arith.dense_params(x.size, w.shape[0], bias=b is not None)
    notes = [f"each output unit y_k = sum_i x_i*W[k, i] + b_k; parameters {params.formula} "
             f"({params.weights} weights, {params.biases} biases: one bias per unit)"]
    inputs = {"input": [number(v) for v in x], "weights": to_lists(w), "bias": None if b is None else [number(v) for v in b]}
    return Calculation("dense", f"fully connected: {x.size} inputs -> {w.shape[0]} units", inputs, [number(v) for v in y], steps,
                       notes, extra={"params": {"weights": params.weights, "biases": params.biases, "total": params.total,
                                                "formula": params.formula}})
