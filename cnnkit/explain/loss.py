"""Losses worked number by number: softmax cross-entropy on logits, mean squared error, and the cost of a mini-batch.

One example per row. For logits ``z`` (one per class) and the true class ``y``::

    p_j = e^(z_j - m) / sum_k e^(z_k - m)       m = max_k z_k (the same p as e^z_j / sum_k e^z_k, without overflow)
    L   = -log p_y                               dL/dz = p - onehot(y)

For a prediction ``ŷ`` and a target ``y`` of ``n`` values each::

    L = (1/n) sum_j (ŷ_j - y_j)^2                dL/dŷ = (2/n)(ŷ - y)

Over a mini-batch of ``m`` examples the cost is the slides' ``J = (1/m) sum_i L_i``, which is
what ``torch.nn.functional.cross_entropy`` and ``mse_loss`` return with ``reduction="mean"``.
The numbers are computed here with NumPy and checked against :mod:`cnnkit.reference`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit import reference as R
from cnnkit.explain.matrices import parse_matrix, to_lists
from cnnkit.explain.working import Calculation

COST_NOTE = ("the cost of a mini-batch of m examples is J = (1/m) sum_i L_i, the mean of the examples' losses (the "
             "slides print it as L(ŷ^(i) - y^(i)); the loss takes the prediction and the target as two arguments, "
             "L(ŷ^(i), y^(i)): cross-entropy is not a function of their difference)")


def _g(value: float) -> str:
    return f"{value:.6g}"


def _p(value: float) -> str:
    """A number as an operand: negatives in brackets."""
    return f"({_g(value)})" if value < 0 else _g(value)


def _vec(values: npt.ArrayLike) -> str:
    """``(1, 0.5, -2)``: a row of numbers as the steps write it."""
    return "(" + ", ".join(_g(v) for v in np.asarray(values, dtype=np.float64).ravel()) + ")"


def _batch(value: str | npt.ArrayLike, name: str) -> np.ndarray:
    """``(m, n)``: one example per row; a 1-D array or one row of text is a mini-batch of one."""
    if not isinstance(value, str):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 1:
            value = array[None]
    return parse_matrix(value, name)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else repr(np.asarray(value).tolist())


def parse_labels(value: str | Sequence[int] | npt.ArrayLike, rows: int, classes: int) -> np.ndarray:
    """One class index per example, each in ``[0, classes)``: ``"0 1"``, ``"0,1"`` or a sequence of ints."""
    texts = re.split(r"[\s,;]+", value.strip()) if isinstance(value, str) else list(np.asarray(value).ravel())
    texts = [t for t in texts if not isinstance(t, str) or t]
    try:
        floats = [float(t) for t in texts]
    except (TypeError, ValueError):
        floats = [math.nan]
    if not all(math.isfinite(f) and f.is_integer() for f in floats):
        raise ValueError(f"`labels` must be whole numbers, one class index per row of `logits`. Received: labels={_shown(value)}")
    labels = np.array([int(f) for f in floats], dtype=np.int64)
    if labels.size != rows:
        raise ValueError(f"`labels` must hold one class index per row of `logits` ({rows} row(s)). "
                         f"Received: labels={_shown(value)} ({labels.size} value(s))")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"`labels` must be class indices in [0, {classes}) (`logits` has {classes} columns, one per "
                         f"class). Received: labels={_shown(value)}")
    return labels


def _cross_entropy_steps(z: np.ndarray, y: int, where: str) -> tuple[list[dict[str, Any]], np.ndarray, float]:
    """One example: max, exponentials, their sum, the probabilities, ``-log p_y`` and ``dL/dz``; also ``p`` and ``L``."""
    m = float(z.max())
    e = np.exp(z - m)
    total = float(e.sum())
    p = e / total
    loss = math.log(total) - (float(z[y]) - m)  # -log p_y as log-sum-exp: no log(0) when p_y underflows
    grad = p - np.eye(z.size)[y]
    steps = [
        {"label": f"{where}max", "expression": f"m = max{_vec(z)} = {_g(m)}"},
        {"label": f"{where}exponentials", "expression": ", ".join(
            f"e^({_g(v)} - {_p(m)}) = {_g(w)}" for v, w in zip(z, e, strict=True))},
        {"label": f"{where}sum", "expression": f"{' + '.join(_g(w) for w in e)} = {_g(total)}"},
        {"label": f"{where}probabilities", "values": p.tolist(), "expression": ", ".join(
            f"p_{j} = {_g(w)}/{_g(total)} = {_g(q)}" for j, (w, q) in enumerate(zip(e, p, strict=True)))},
        {"label": f"{where}loss", "value": loss,
         "expression": (f"L = -log p_{y} = -log({_g(p[y])}) = {_g(loss)} (the true class is {y})" if p[y] >= 1e-6 else
                        f"L = -log p_{y} = log({_g(total)}) - ({_g(z[y])} - {_p(m)}) = {_g(loss)} (the true class is "
                        f"{y}; p_{y} is too small to write, so -log p = log(sum) - (z_{y} - m))")},
        {"label": f"{where}dL/dz", "values": grad.tolist(),
         "expression": f"p - onehot({y}) = {_vec(p)} - {_vec(np.eye(z.size)[y])} = {_vec(grad)}"},
    ]
    return steps, p, loss


def _cost_step(losses: list[float]) -> dict[str, Any]:
    cost = sum(losses) / len(losses)
    if len(losses) == 1:
        return {"label": "cost", "value": cost, "expression": f"J = L = {_g(cost)} (a mini-batch of one example)"}
    return {"label": "cost", "value": cost,
            "expression": f"J = (1/{len(losses)})*({' + '.join(_g(v) for v in losses)}) = {_g(cost)}"}


def _check_step(agrees: bool, name: str, reference: float) -> dict[str, Any]:
    return {"label": "check", "expression": f"cnnkit.reference.{name} gives " + ("the same J" if agrees else f"J = {reference!r}")}


def explain_cross_entropy(logits: str | npt.ArrayLike, labels: str | Sequence[int] | npt.ArrayLike) -> Calculation:
    """Softmax cross-entropy of each example, then the cost ``J`` of the mini-batch, every number written out.

    ``(m, C)`` logits and ``m`` class indices ``-> J`` (a float); ``extra["losses"]`` holds each ``L_i``,
    ``extra["probabilities"]`` the ``(m, C)`` softmax and ``extra["grad_logits"]`` ``dJ/dz = (p - onehot(y))/m``.

    >>> c = explain_cross_entropy("2 1 0.1", "0")
    >>> round(c.output, 6), [round(p, 3) for p in c.extra["probabilities"][0]]
    (0.41703, [0.659, 0.242, 0.099])
    """
    z = _batch(logits, "logits")
    y = parse_labels(labels, z.shape[0], z.shape[1])
    steps: list[dict[str, Any]] = []
    losses, probabilities = [], []
    for i, (row, label) in enumerate(zip(z, y, strict=True)):
        row_steps, p, loss = _cross_entropy_steps(row, int(label), f"example {i}: " if z.shape[0] > 1 else "")
        steps += row_steps
        losses.append(loss)
        probabilities.append(p)
    steps.append(_cost_step(losses))
    cost = sum(losses) / len(losses)
    grad_logits = (np.array(probabilities) - np.eye(z.shape[1])[y]) / z.shape[0]  # (m, C)
    if z.shape[0] > 1:
        steps.append({"label": "dJ/dz", "expression": f"each example's dL/dz divided by m = {z.shape[0]}",
                      "details": [f"example {i}: {_vec(g)}" for i, g in enumerate(grad_logits)]})
    reference = float(R.cross_entropy(z, y))
    agrees = math.isclose(reference, cost, rel_tol=1e-12, abs_tol=1e-12)
    steps.append(_check_step(agrees, "cross_entropy", reference))
    notes = [
        "p = softmax(z): subtracting the row's maximum m changes no p (the factor e^-m cancels) but keeps e^z from "
        "overflowing; L = -log p_y is small when the true class gets a probability near 1",
        "dL/dz = p - onehot(y): the softmax and the log undo each other, which is why frameworks fuse them "
        "(torch.nn.functional.cross_entropy takes logits, not probabilities)",
        COST_NOTE,
    ]
    m = z.shape[0]
    title = (f"cross-entropy with softmax: {m} example(s), {z.shape[1]} classes"
             + (", cost J = mean of the losses" if m > 1 else ""))
    return Calculation(
        "loss", title, {"logits": to_lists(z), "labels": [int(v) for v in y]}, cost, steps, notes,
        extra={"loss": "cross-entropy", "losses": losses, "probabilities": np.array(probabilities).tolist(),
               "grad_logits": grad_logits.tolist(), "agrees_with_reference": agrees},
    )


def _mse_steps(prediction: np.ndarray, target: np.ndarray, where: str) -> tuple[list[dict[str, Any]], float]:
    """One example: the differences, their squares and their mean."""
    diff = prediction - target
    squares = diff**2
    loss = float(squares.mean())
    n = prediction.size
    steps = [
        {"label": f"{where}differences", "values": diff.tolist(), "expression": "ŷ - y = " + ", ".join(
            f"{_g(a)} - {_p(b)} = {_g(c)}" for a, b, c in zip(prediction, target, diff, strict=True))},
        {"label": f"{where}squares", "values": squares.tolist(),
         "expression": ", ".join(f"{_p(c)}^2 = {_g(q)}" for c, q in zip(diff, squares, strict=True))},
        {"label": f"{where}loss", "value": loss,
         "expression": f"L = ({' + '.join(_g(q) for q in squares)})/{n} = {_g(loss)}" if n > 1 else f"L = {_g(loss)}"},
    ]
    return steps, loss


def explain_mse(predictions: str | npt.ArrayLike, targets: str | npt.ArrayLike) -> Calculation:
    """Mean squared error of each example, then the cost ``J`` of the mini-batch, every number written out.

    ``(m, n)`` predictions and ``(m, n)`` targets ``-> J`` (a float); ``extra["losses"]`` holds each ``L_i``
    and ``extra["grad_predictions"]`` ``dJ/dŷ = 2(ŷ - y)/(m n)``.

    >>> explain_mse("1.5 2; 0 1", "1 2; 1 1").output
    0.3125
    """
    p, t = _batch(predictions, "predictions"), _batch(targets, "targets")
    if p.shape != t.shape:
        raise ValueError(f"`targets` must have the shape of `predictions` {p.shape}, one row per example. "
                         f"Received: targets={_shown(targets)} (shape {t.shape})")
    steps: list[dict[str, Any]] = []
    losses = []
    for i, (row, target) in enumerate(zip(p, t, strict=True)):
        row_steps, loss = _mse_steps(row, target, f"example {i}: " if p.shape[0] > 1 else "")
        steps += row_steps
        losses.append(loss)
    steps.append(_cost_step(losses))
    cost = sum(losses) / len(losses)
    grad = 2 * (p - t) / p.size
    steps.append({"label": "dJ/dŷ", "expression": f"2(ŷ - y)/(m*n) = 2(ŷ - y)/{p.size}",
                  "details": [f"example {i}: {_vec(g)}" for i, g in enumerate(grad)]})
    reference = float(R.mse_loss(p, t))
    agrees = math.isclose(reference, cost, rel_tol=1e-12, abs_tol=1e-12)
    steps.append(_check_step(agrees, "mse_loss", reference))
    notes = [
        f"L = (1/n) sum_j (ŷ_j - y_j)^2 over an example's n = {p.shape[1]} value(s); J, the mean of the m examples' L, "
        "is the mean over all m*n squares: torch.nn.functional.mse_loss with reduction='mean'",
        "some textbooks write L = (1/2)(ŷ - y)^2 so that the 2 of the derivative cancels; torch (and this explanation) "
        "has no 1/2, so dL/dŷ = 2(ŷ - y)/n",
        COST_NOTE,
    ]
    title = f"mean squared error: {p.shape[0]} example(s), {p.shape[1]} value(s) each" + (", cost J = mean of the losses" if p.shape[0] > 1 else "")
    return Calculation(
        "loss", title, {"predictions": to_lists(p), "targets": to_lists(t)}, cost, steps, notes,
        extra={"loss": "mse", "losses": losses, "grad_predictions": grad.tolist(), "agrees_with_reference": agrees},
    )


__all__ = ["explain_cross_entropy", "explain_mse", "parse_labels"]
