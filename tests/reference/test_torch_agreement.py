"""Every reference op against its torch twin: values and gradients (torch autograd), float64, within 1e-8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_cases import CASES, PAIRS, Case, make_arrays

from cnnkit import reference as R

TOL = {"rtol": 1e-8, "atol": 1e-8}

# torch warns that it copies the input for an even kernel with padding="same"; that is what the case tests
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def test_every_op_is_paired_by_name_and_has_a_backward_beside_it() -> None:
    assert set(PAIRS) == set(R.OPS)
    for name, pair in PAIRS.items():
        assert pair.forward is getattr(R, name)
        assert pair.backward is getattr(R, f"{name}_backward")
        assert pair.backward.__module__ == pair.forward.__module__


def test_every_op_has_cases() -> None:
    assert {case.op for case in CASES} == set(PAIRS)


def _to_torch(arrays: dict[str, np.ndarray], grads: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value, requires_grad=name in grads and value.dtype == np.float64) for name, value in arrays.items()}


def _as_tuple(value: object) -> tuple[object, ...]:
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_values_and_gradients_match_torch(case: Case) -> None:
    pair = PAIRS[case.op]
    arrays = make_arrays(case)
    tensors = _to_torch(arrays, pair.grads)

    expected = pair.twin(**tensors, **case.kwargs)
    actual = pair.forward(**{k: v.copy() for k, v in arrays.items()}, **case.kwargs)
    assert actual.shape == tuple(expected.shape)
    assert actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected.detach().numpy(), **TOL)

    grad_out = np.random.default_rng(1).standard_normal(actual.shape)
    expected.backward(torch.tensor(grad_out))
    grads = _as_tuple(pair.backward(grad_out, **arrays, **case.kwargs))
    assert len(grads) == len(pair.grads)
    for name, grad in zip(pair.grads, grads, strict=True):
        if name not in arrays:
            assert grad is None, f"{case.op}: a gradient for the absent argument {name!r}"
            continue
        torch_grad = tensors[name].grad
        assert torch_grad is not None
        np.testing.assert_allclose(grad, torch_grad.numpy(), err_msg=f"gradient of {name!r}", **TOL)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_updates_running_statistics_like_torch(training: bool) -> None:
    rng = np.random.default_rng(3)
    x, mean, var = rng.standard_normal((5, 3, 4, 4)), rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    torch_mean, torch_var = torch.tensor(mean), torch.tensor(var)
    torch.nn.functional.batch_norm(torch.tensor(x), torch_mean, torch_var, training=training, momentum=0.25)
    R.batch_norm(x, mean, var, training=training, momentum=0.25)
    np.testing.assert_allclose(mean, torch_mean.numpy(), **TOL)
    np.testing.assert_allclose(var, torch_var.numpy(), **TOL)


def test_float32_stays_float32_and_ints_become_float64() -> None:
    x32 = np.ones((1, 1, 4, 4), dtype=np.float32)
    assert R.conv2d(x32, np.ones((1, 1, 3, 3), dtype=np.float32)).dtype == np.float32
    assert R.max_pool2d(np.arange(16).reshape(1, 1, 4, 4), 2).dtype == np.float64


def test_dropout_with_the_same_rng_seed_is_reproducible() -> None:
    x = np.ones((50, 40))
    first = R.dropout(x, 0.3, rng=np.random.default_rng(7))
    second = R.dropout(x, 0.3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(first, second)
    kept = first != 0
    np.testing.assert_allclose(first[kept], 1 / 0.7)
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_array_equal(R.dropout_mask(x.shape, 0.3, np.random.default_rng(7)), kept)
