"""A few steps of a gradient-based optimizer on a small problem, every number written out as ``torch.optim`` computes it.

Two problems, with weights ``w`` (``n`` of them)::

    quadratic       f(w) = 0.5 * sum_i a_i w_i^2             g = a*w                 a bowl, curvature a_i along w_i
    least squares   J(w) = (1/m) sum_k (x_k . w - y_k)^2     g = (2/m) X^T (X w - y)   torch's mse_loss(X w, y)

The updates are ``torch.optim``'s (no weight decay, no Nesterov, no AMSGrad; every state starts at zero)::

    sgd       w <- w - lr*g                                                       torch.optim.SGD
    momentum  v <- mu*v + g;                      w <- w - lr*v                   torch.optim.SGD(momentum=mu)
    adagrad   G <- G + g^2;                       w <- w - lr*g/(sqrt(G) + eps)   torch.optim.Adagrad
    rmsprop   s <- alpha*s + (1 - alpha)*g^2;     w <- w - lr*g/(sqrt(s) + eps)   torch.optim.RMSprop
    adam      m <- beta1*m + (1 - beta1)*g;  v <- beta2*v + (1 - beta2)*g^2;
              m_hat = m/(1 - beta1^t);  v_hat = v/(1 - beta2^t);  w <- w - lr*m_hat/(sqrt(v_hat) + eps)   torch.optim.Adam

Everything here is NumPy; the tests step the torch optimizers on the same problem and compare.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cnnkit.explain.matrices import parse_matrix, to_lists
from cnnkit.explain.steps import term
from cnnkit.explain.working import Calculation

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
TORCH_NAMES = {"sgd": "torch.optim.SGD", "momentum": "torch.optim.SGD(momentum=mu)", "adagrad": "torch.optim.Adagrad",
               "rmsprop": "torch.optim.RMSprop", "adam": "torch.optim.Adam"}
# torch.optim's learning rates (SGD 1e-3, Adagrad 1e-2, Adam 1e-3) barely move three steps; RMSprop keeps torch's 0.01,
# since its first step is lr*g/sqrt((1 - alpha)*g^2) = 10*lr per weight
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "adagrad": 0.1, "rmsprop": 0.01, "adam": 0.1}
TORCH_LR = {"sgd": 0.001, "momentum": 0.001, "adagrad": 0.01, "rmsprop": 0.01, "adam": 0.001}
DEFAULT_EPS = {"adagrad": 1e-10, "rmsprop": 1e-8, "adam": 1e-8}  # torch.optim's
USES = {"sgd": ("lr",), "momentum": ("lr", "momentum"), "adagrad": ("lr", "eps"), "rmsprop": ("lr", "alpha", "eps"),
        "adam": ("lr", "beta1", "beta2", "eps")}
DEFAULT_CURVATURE = (1.0, 5.0)  # f(w) = 0.5*(w_0^2 + 5 w_1^2): one gentle and one steep direction
MAX_STEPS = 50  # every step is written out

CONVENTIONS = {
    "sgd": "w <- w - lr*g: gradient descent on the gradient of the whole (mini-)batch, torch.optim.SGD with momentum 0",
    "momentum": "torch.optim.SGD(momentum=mu) keeps v <- mu*v + g and steps w <- w - lr*v (no dampening; v starts as "
                "the first gradient). Textbooks also write v <- mu*v - lr*g, w <- w + v (the same steps while lr is "
                "constant) or v <- beta*v + (1 - beta)*g, w <- w - lr*v (an average of the gradients: every step is "
                "(1 - beta) times torch's, so the same steps need lr/(1 - beta))",
    "adagrad": "torch.optim.Adagrad: G <- G + g^2, w <- w - lr*g/(sqrt(G) + eps); torch adds eps after the square root "
               "(some texts write sqrt(G + eps)) and starts G at 0 (initial_accumulator_value 0, lr_decay 0)",
    "rmsprop": "torch.optim.RMSprop: s <- alpha*s + (1 - alpha)*g^2, w <- w - lr*g/(sqrt(s) + eps); torch calls the "
               "decay alpha (default 0.99; other texts call it rho or beta, often 0.9), adds eps after the square root "
               "(some texts write sqrt(s + eps)) and starts s at 0 without bias correction, so the first step is "
               "about lr/sqrt(1 - alpha) per weight",
    "adam": "torch.optim.Adam: m <- beta1*m + (1 - beta1)*g, v <- beta2*v + (1 - beta2)*g^2, m_hat = m/(1 - beta1^t), "
            "v_hat = v/(1 - beta2^t), w <- w - lr*m_hat/(sqrt(v_hat) + eps): eps is added after the square root of "
            "the bias-corrected v_hat, as in the Adam paper's Algorithm 1 (its 'more efficient' variant adds an eps "
            "to the uncorrected sqrt(v) instead, which gives slightly different numbers)",
}


def _g(value: float) -> str:
    return f"{value:.6g}"


def _vec(values: npt.ArrayLike) -> str:
    """``(1, 0.5, -2)``: a vector as the steps write it."""
    return "(" + ", ".join(_g(v) for v in np.asarray(values, dtype=np.float64).ravel()) + ")"


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else repr(np.asarray(value).tolist())


def parse_vector(value: str | npt.ArrayLike, name: str) -> np.ndarray:
    """A 1-D float64 array from ``"1 2 3"``, ``"1; 2; 3"``, ``[1, 2, 3]`` or a one-row/one-column matrix."""
    if not isinstance(value, str):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 1:
            value = array[None]
    matrix = parse_matrix(value, name)
    if 1 not in matrix.shape:
        raise ValueError(f"`{name}` must be a vector (one row or one column). Received: {name}={_shown(value)} (shape {matrix.shape})")
    return matrix.ravel()


# ----------------------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Hyperparameters:
    """The numbers an update uses; :func:`resolve_hyperparameters` fills in the defaults and checks the ranges."""

    optimizer: str  # one of OPTIMIZERS
    lr: float  # learning rate
    momentum: float = 0.9  # momentum's mu (torch.optim.SGD's default 0 is plain sgd)
    alpha: float = 0.99  # RMSprop's decay of the squared gradients' average (torch's default)
    beta1: float = 0.9  # Adam's decay of the gradients' average (torch's default)
    beta2: float = 0.999  # Adam's decay of the squared gradients' average (torch's default)
    eps: float = 1e-8  # added after the square root: adagrad (torch: 1e-10), rmsprop, adam (1e-8)

    def used(self) -> dict[str, float]:
        """The hyperparameters this optimizer reads, by name."""
        return {name: getattr(self, name) for name in USES[self.optimizer]}


def _check_optimizer(optimizer: str) -> str:
    if optimizer in OPTIMIZERS:
        return optimizer
    near = difflib.get_close_matches(str(optimizer).lower(), OPTIMIZERS, n=2, cutoff=0.5)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ValueError(f"`optimizer` must be one of {', '.join(OPTIMIZERS)}.{hint} Received: optimizer={optimizer!r}")


def _check_number(name: str, value: float, low: float, high: float, rule: str) -> float:
    """``value`` as a float in ``[low, high)`` (``low`` excluded when ``rule`` says positive)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    inside = low < value < high if rule == "a positive number" else low <= value < high
    if not inside:
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")
    return float(value)


def resolve_hyperparameters(
    optimizer: str,
    lr: float | None = None,
    momentum: float | None = None,
    alpha: float | None = None,
    beta1: float | None = None,
    beta2: float | None = None,
    eps: float | None = None,
) -> Hyperparameters:
    """Defaults for what is ``None``; a value the optimizer does not use, or one out of range, is a ``ValueError``."""
    name = _check_optimizer(optimizer)
    given = {"lr": lr, "momentum": momentum, "alpha": alpha, "beta1": beta1, "beta2": beta2, "eps": eps}
    for key, value in given.items():
        if value is not None and key not in USES[name]:
            uses = ", ".join(USES[name])
            raise ValueError(f"`{key}` is not used by the {name} optimizer (it uses {uses}). Received: optimizer={name!r}, {key}={value!r}")
    unit = "a number in [0, 1)"
    return Hyperparameters(
        name,
        lr=_check_number("lr", DEFAULT_LR[name] if lr is None else lr, 0.0, math.inf, "a positive number"),
        momentum=_check_number("momentum", 0.9 if momentum is None else momentum, 0.0, 1.0, unit),
        alpha=_check_number("alpha", 0.99 if alpha is None else alpha, 0.0, 1.0, unit),
        beta1=_check_number("beta1", 0.9 if beta1 is None else beta1, 0.0, 1.0, unit),
        beta2=_check_number("beta2", 0.999 if beta2 is None else beta2, 0.0, 1.0, unit),
        eps=_check_number("eps", DEFAULT_EPS.get(name, 1e-8) if eps is None else eps, 0.0, math.inf, "a positive number"),
    )


# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Quadratic:
    """``f(w) = 0.5 * sum_i a_i w_i^2``: a bowl with curvature ``a_i`` along ``w_i``; ``g = a*w``."""

    curvature: np.ndarray  # (n,), the a_i

    def describe(self) -> str:
        return "f(w) = 0.5*(" + " + ".join(f"{_g(a)}*w_{i}^2" for i, a in enumerate(self.curvature)) + ")"

    def loss(self, w: np.ndarray) -> float:
        return float(0.5 * (self.curvature * w**2).sum())

    def gradient(self, w: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
        """``g = a*w`` with the products written out; no detail lines."""
        g = self.curvature * w
        products = ", ".join(term(a, v) for a, v in zip(self.curvature, w, strict=True))
        return g, f"g = a*w = ({products}) = {_vec(g)}", []

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "quadratic", "formula": self.describe(), "curvature": self.curvature.tolist()}


@dataclass(frozen=True)
class LeastSquares:
    """``J(w) = (1/m) sum_k (x_k . w - y_k)^2`` over ``m`` examples (rows of ``X``); ``g = (2/m) X^T (X w - y)``."""

    inputs: np.ndarray  # (m, n), one example per row
    targets: np.ndarray  # (m,)

    def describe(self) -> str:
        return f"J(w) = (1/{self.inputs.shape[0]}) sum_k (x_k . w - y_k)^2, the mean squared error of X w over {self.inputs.shape[0]} examples"

    def loss(self, w: np.ndarray) -> float:
        return float(((self.inputs @ w - self.targets) ** 2).mean())

    def gradient(self, w: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
        """``g = (2/m) X^T r`` with the predictions ``X w`` and the residuals ``r = X w - y`` as detail lines."""
        m = self.inputs.shape[0]
        predictions = self.inputs @ w  # (m,)
        residuals = predictions - self.targets
        g = 2 / m * (self.inputs.T @ residuals)  # (n,)
        details = [
            "X w = (" + ", ".join(" + ".join(term(x, v) for x, v in zip(row, w, strict=True)) for row in self.inputs)
            + f") = {_vec(predictions)}",
            f"r = X w - y = {_vec(predictions)} - {_vec(self.targets)} = {_vec(residuals)}",
            *(f"g_{j} = (2/{m})*(" + " + ".join(term(x, r) for x, r in zip(column, residuals, strict=True)) + f") = {_g(gj)}"
              for j, (column, gj) in enumerate(zip(self.inputs.T, g, strict=True))),
        ]
        return g, f"g = (2/m) X^T (X w - y) = {_vec(g)}", details

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "least-squares", "formula": self.describe(), "inputs": to_lists(self.inputs),
                "targets": self.targets.tolist()}


Problem = Quadratic | LeastSquares


def make_problem(
    weights: str | npt.ArrayLike | None = None,
    curvature: str | npt.ArrayLike | None = None,
    inputs: str | npt.ArrayLike | None = None,
    targets: str | npt.ArrayLike | None = None,
) -> tuple[Problem, np.ndarray]:
    """The problem and the starting weights: least squares when ``inputs`` are given, else the quadratic.

    Defaults: the quadratic ``a = (1, 5)``, starting at ``w = 1`` everywhere; least squares starts at ``w = 0``.
    """
    if inputs is None:
        if targets is not None:
            raise ValueError(f"`targets` needs `inputs` (least squares: one example per row of inputs). Received: targets={_shown(targets)}")
        a = np.array(DEFAULT_CURVATURE) if curvature is None else parse_vector(curvature, "curvature")
        w = np.ones_like(a) if weights is None else parse_vector(weights, "weights")
        if w.size != a.size:
            raise ValueError(f"`weights` must have one value per curvature a_i ({a.size}). "
                             f"Received: weights={_shown(weights)} ({w.size} value(s)), curvature={_shown(curvature if curvature is not None else a)}")
        return Quadratic(a), w
    if curvature is not None:
        raise ValueError("give `curvature` (a quadratic) or `inputs` and `targets` (least squares), not both. "
                         f"Received: curvature={_shown(curvature)}, inputs={_shown(inputs)}")
    x = parse_matrix(inputs, "inputs")
    if targets is None:
        raise ValueError(f"`inputs` needs `targets`, one per row of inputs ({x.shape[0]}). Received: targets=None")
    y = parse_vector(targets, "targets")
    if y.size != x.shape[0]:
        raise ValueError(f"`targets` must have one value per row of `inputs` ({x.shape[0]}). Received: targets={_shown(targets)} ({y.size} value(s))")
    w = np.zeros(x.shape[1]) if weights is None else parse_vector(weights, "weights")
    if w.size != x.shape[1]:
        raise ValueError(f"`weights` must have one value per column of `inputs` ({x.shape[1]}). Received: weights={_shown(weights)} ({w.size} value(s))")
    return LeastSquares(x, y), w


# ----------------------------------------------------------------------------- one update per optimizer

Line = tuple[str, str, np.ndarray]  # (quantity, expression, value)
State = dict[str, np.ndarray]


def _sgd(g: np.ndarray, state: State, t: int, h: Hyperparameters) -> tuple[np.ndarray, list[Line]]:
    step = h.lr * g
    return step, [("step", f"lr*g = {_g(h.lr)}*{_vec(g)} = {_vec(step)}", step)]


def _momentum(g: np.ndarray, state: State, t: int, h: Hyperparameters) -> tuple[np.ndarray, list[Line]]:
    old = state.get("velocity", np.zeros_like(g))
    v = h.momentum * old + g  # torch's first buffer is g itself: the same as mu*0 + g
    state["velocity"] = v
    step = h.lr * v
    return step, [("velocity", f"v = mu*v + g = {_g(h.momentum)}*{_vec(old)} + {_vec(g)} = {_vec(v)}", v),
                  ("step", f"lr*v = {_g(h.lr)}*{_vec(v)} = {_vec(step)}", step)]


def _adagrad(g: np.ndarray, state: State, t: int, h: Hyperparameters) -> tuple[np.ndarray, list[Line]]:
    old = state.get("sum_squares", np.zeros_like(g))
    total = old + g * g
    state["sum_squares"] = total
    root = np.sqrt(total)
    step = h.lr * g / (root + h.eps)
    return step, [
        ("sum of squares", f"G = G + g^2 = {_vec(old)} + {_vec(g * g)} = {_vec(total)}", total),
        ("step", f"lr*g/(sqrt(G) + eps) = {_g(h.lr)}*{_vec(g)}/({_vec(root)} + {_g(h.eps)}) = {_vec(step)}", step),
    ]


def _rmsprop(g: np.ndarray, state: State, t: int, h: Hyperparameters) -> tuple[np.ndarray, list[Line]]:
    old = state.get("square_avg", np.zeros_like(g))
    avg = h.alpha * old + (1 - h.alpha) * g * g
    state["square_avg"] = avg
    root = np.sqrt(avg)
    step = h.lr * g / (root + h.eps)
    return step, [
        ("mean square", f"s = alpha*s + (1 - alpha)*g^2 = {_g(h.alpha)}*{_vec(old)} + {_g(1 - h.alpha)}*{_vec(g * g)} = {_vec(avg)}", avg),
        ("step", f"lr*g/(sqrt(s) + eps) = {_g(h.lr)}*{_vec(g)}/({_vec(root)} + {_g(h.eps)}) = {_vec(step)}", step),
    ]


def _adam(g: np.ndarray, state: State, t: int, h: Hyperparameters) -> tuple[np.ndarray, list[Line]]:
    m_old, v_old = state.get("m", np.zeros_like(g)), state.get("v", np.zeros_like(g))
    m = h.beta1 * m_old + (1 - h.beta1) * g
    v = h.beta2 * v_old + (1 - h.beta2) * g * g
    state["m"], state["v"] = m, v
    correction1, correction2 = 1 - h.beta1**t, 1 - h.beta2**t
    m_hat, v_hat = m / correction1, v / correction2
    root = np.sqrt(v_hat)
    step = h.lr * m_hat / (root + h.eps)
    b1, b2 = _g(h.beta1), _g(h.beta2)
    return step, [
        ("first moment", f"m = beta1*m + (1 - beta1)*g = {b1}*{_vec(m_old)} + {_g(1 - h.beta1)}*{_vec(g)} = {_vec(m)}", m),
        ("second moment", f"v = beta2*v + (1 - beta2)*g^2 = {b2}*{_vec(v_old)} + {_g(1 - h.beta2)}*{_vec(g * g)} = {_vec(v)}", v),
        ("bias-corrected m", f"m_hat = m/(1 - beta1^t) = {_vec(m)}/(1 - {b1}^{t}) = {_vec(m)}/{_g(correction1)} = {_vec(m_hat)}", m_hat),
        ("bias-corrected v", f"v_hat = v/(1 - beta2^t) = {_vec(v)}/(1 - {b2}^{t}) = {_vec(v)}/{_g(correction2)} = {_vec(v_hat)}", v_hat),
        ("step", f"lr*m_hat/(sqrt(v_hat) + eps) = {_g(h.lr)}*{_vec(m_hat)}/({_vec(root)} + {_g(h.eps)}) = {_vec(step)}", step),
    ]


UPDATES: dict[str, Callable[[np.ndarray, State, int, Hyperparameters], tuple[np.ndarray, list[Line]]]] = {
    "sgd": _sgd, "momentum": _momentum, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam,
}


# ----------------------------------------------------------------------------- the explanation


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"`steps` must be an int from 1 to {MAX_STEPS} (every step is written out). Received: steps={steps!r}")
    return steps


def _one_step(problem: Problem, w: np.ndarray, state: State, t: int, h: Hyperparameters) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """Step ``t``: the gradient, the optimizer's state and step, the new weights; also the step's trajectory row."""
    g, expression, details = problem.gradient(w)
    step, lines = UPDATES[h.optimizer](g, state, t, h)
    new = w - step
    if not np.isfinite(new).all():
        raise ValueError(f"the weights are no longer finite after step {t} ({_vec(new)}): the learning rate is too large "
                         f"for this problem. Received: lr={h.lr!r}")
    loss = problem.loss(new)
    entries: list[dict[str, Any]] = [{"label": f"t={t} gradient", "t": t, "quantity": "gradient", "values": g.tolist(),
                                      "expression": expression, "details": details}]
    entries += [{"label": f"t={t} {quantity}", "t": t, "quantity": quantity, "values": value.tolist(), "expression": text}
                for quantity, text, value in lines]
    entries.append({"label": f"t={t} weights", "t": t, "quantity": "weights", "values": new.tolist(), "loss": loss,
                    "expression": f"w = w - step = {_vec(w)} - {_vec(step)} = {_vec(new)}; loss {_g(loss)}"})
    row = {"t": t, "gradient": g.tolist(), **{quantity: value.tolist() for quantity, _, value in lines},
           "weights": new.tolist(), "loss": loss}
    return new, entries, row


def _notes(h: Hyperparameters, default_lr: bool, default_momentum: bool) -> list[str]:
    """The update rule and where textbooks differ; which defaults are not torch.optim's."""
    notes = [CONVENTIONS[h.optimizer]]
    torch_lr = TORCH_LR[h.optimizer]
    if default_lr:
        notes.append(f"lr {_g(h.lr)}, {TORCH_NAMES[h.optimizer]}'s default" if h.lr == torch_lr else
                     f"lr {_g(h.lr)} by default here, so that a few steps move visibly ({TORCH_NAMES[h.optimizer]}'s own "
                     f"default is {_g(torch_lr)})")
    if h.optimizer == "momentum" and default_momentum:
        notes.append(f"mu {_g(h.momentum)} by default here (torch.optim.SGD's default momentum is 0, which is plain sgd)")
    return notes


def explain_update(
    optimizer: str = "sgd",
    weights: str | npt.ArrayLike | None = None,
    *,
    curvature: str | npt.ArrayLike | None = None,
    inputs: str | npt.ArrayLike | None = None,
    targets: str | npt.ArrayLike | None = None,
    steps: int = 3,
    lr: float | None = None,
    momentum: float | None = None,
    alpha: float | None = None,
    beta1: float | None = None,
    beta2: float | None = None,
    eps: float | None = None,
) -> Calculation:
    """``steps`` updates of ``optimizer`` from ``weights``: each step's gradient, state, step and new weights.

    The problem is the quadratic ``f(w) = 0.5*sum_i a_i w_i^2`` (``curvature`` = the ``a_i``, default
    ``(1, 5)``, weights default 1) or, with ``inputs`` (``(m, n)``) and ``targets`` (``m``), least squares
    ``J(w) = (1/m) sum_k (x_k . w - y_k)^2`` (weights default 0). Hyperparameters left ``None`` take
    ``torch.optim``'s defaults, except ``lr`` (:data:`DEFAULT_LR`). ``output`` is the final weights;
    ``extra["trajectory"]`` one row per step.

    >>> c = explain_update("momentum", steps=2)
    >>> [row["velocity"] for row in c.extra["trajectory"]], [round(w, 6) for w in c.output]
    ([[1.0, 5.0], [1.8, 7.0]], [0.72, -0.2])
    """
    h = resolve_hyperparameters(optimizer, lr, momentum, alpha, beta1, beta2, eps)
    problem, w0 = make_problem(weights, curvature, inputs, targets)
    n_steps = _check_steps(steps)
    trajectory: list[dict[str, Any]] = []
    state: State = {}
    w = w0
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is a user error, raised by _one_step
        start = problem.loss(w0)
        entries: list[dict[str, Any]] = [{"label": "start", "t": 0, "quantity": "weights", "values": w0.tolist(),
                                          "loss": start, "expression": f"w = {_vec(w0)}; loss {_g(start)}"}]
        for t in range(1, n_steps + 1):
            w, step_entries, row = _one_step(problem, w, state, t, h)
            entries += step_entries
            trajectory.append(row)
    used = h.used()
    return Calculation(
        "update",
        f"{h.optimizer} ({TORCH_NAMES[h.optimizer]}): {n_steps} step(s) on {problem.describe()} from w = {_vec(w0)}",
        {"optimizer": h.optimizer, "weights": w0.tolist(), **used, "steps": n_steps},
        w.tolist(),
        entries,
        _notes(h, lr is None, momentum is None),
        extra={"problem": problem.to_dict(), "hyperparameters": used, "trajectory": trajectory},
    )
