"""Each reference backward against central finite differences of its own forward, on small inputs.

Independent of torch: ``d/dz sum(f(z) * g)`` estimated as ``(F(z + h) - F(z - h)) / 2h`` per element.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from reference_cases import CASES, PAIRS, Case, make_arrays

STEP = 1e-6
PER_OP = 4  # the smallest few cases of each op keep this file fast


def _small_cases() -> list[Case]:
    chosen: list[Case] = []
    for op in PAIRS:
        chosen += sorted((case for case in CASES if case.op == op), key=Case.size)[:PER_OP]
    return chosen


def _numerical_gradient(objective: Callable[[np.ndarray], float], point: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + STEP
        above = objective(point)
        point[index] = original - STEP
        below = objective(point)
        point[index] = original
        grad[index] = (above - below) / (2 * STEP)
    return grad


@pytest.mark.parametrize("case", _small_cases(), ids=lambda case: case.id)
def test_backward_matches_finite_differences(case: Case) -> None:
    pair = PAIRS[case.op]
    arrays = make_arrays(case, seed=5)
    grad_out = np.random.default_rng(6).standard_normal(np.shape(pair.forward(**arrays, **case.kwargs)))
    grads = pair.backward(grad_out, **arrays, **case.kwargs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for name, analytic in zip(pair.grads, grads, strict=True):
        if name not in arrays:
            continue

        def objective(value: np.ndarray, name: str = name) -> float:
            return float(np.sum(pair.forward(**{**arrays, name: value}, **case.kwargs) * grad_out))

        numeric = _numerical_gradient(objective, arrays[name].copy())
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6, err_msg=f"gradient of {name!r}")
