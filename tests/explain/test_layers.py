"""Activations, softmax and dense explanations against torch, with the formulas' numbers and pinned errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.explain import explain_activation, explain_dense, explain_softmax


def _torch(name: str, x: torch.Tensor) -> torch.Tensor:
    return {"relu": F.relu, "leakyrelu": lambda t: F.leaky_relu(t, 0.1), "elu": F.elu, "sigmoid": torch.sigmoid,
            "tanh": torch.tanh}[name](x)


@pytest.mark.parametrize("name", ["relu", "leakyrelu", "elu", "sigmoid", "tanh"])
@pytest.mark.parametrize("seed", range(3))
def test_elementwise_matches_torch(name: str, seed: int) -> None:
    x = np.random.default_rng(seed).integers(-6, 7, (3, 4)).astype(float) / 2
    got = json.loads(json.dumps(explain_activation(name, x).to_dict()))
    np.testing.assert_allclose(got["output"], _torch(name, torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-12)
    assert len(got["steps"]) == 12
    for step in got["steps"]:
        assert step["expression"].endswith(f"= {step['value']:g}") or step["expression"].endswith(f"so {step['value']:g}")


def test_cell_formulas_with_numbers() -> None:
    assert explain_activation("relu", "-2 3").steps[0]["expression"] == "max(0, -2) = 0"
    leaky = explain_activation("leakyrelu", "-2 3").steps
    assert [s["expression"] for s in leaky] == ["0.1*(-2) = -0.2", "3 > 0, so 3"]
    assert explain_activation("leaky_relu", "-2", slope=0.01).output == [[-0.02]]
    assert explain_activation("elu", "-1").steps[0]["expression"] == "1*(e^(-1) - 1) = 1*(0.367879 - 1) = -0.632121"
    assert explain_activation("sigmoid", "0").steps[0]["expression"] == "1/(1 + e^-0) = 1/(1 + 1) = 0.5"


def test_maxout_takes_the_max_of_each_run_of_pieces() -> None:
    c = explain_activation("maxout", "1 5 -2 0 7 1; 3 3 4 -1 0 0", pieces=3)
    x = torch.tensor([[1, 5, -2, 0, 7, 1], [3, 3, 4, -1, 0, 0]], dtype=torch.float64)
    assert c.output == x.reshape(2, 2, 3).amax(dim=2).tolist()
    assert c.steps[1]["expression"] == "max(0, 7, 1) = 7"
    with pytest.raises(ValueError, match=r"maxout: `pieces` must be a positive int dividing the row length \(6\).*Received: pieces=4, input shape=\(2, 6\)"):
        explain_activation("maxout", "1 5 -2 0 7 1; 3 3 4 -1 0 0", pieces=4)


def test_softmax_steps_and_stability() -> None:
    c = explain_softmax("1 2 3")
    np.testing.assert_allclose(c.output, torch.softmax(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), 0).numpy(), rtol=1e-12)
    labels = [s["label"] for s in c.steps]
    assert labels == ["max", "exponentials", "sum", "p_0", "p_1", "p_2"]
    assert c.steps[1]["expression"] == "e^(1 - 3) = 0.135335, e^(2 - 3) = 0.367879, e^(3 - 3) = 1"
    assert "subtracting the maximum" in c.notes[0]
    big = explain_softmax("1000 1001")
    assert np.isfinite(big.output).all() and abs(sum(big.output) - 1) < 1e-12
    rows = explain_activation("softmax", "1 2; 3 5")
    np.testing.assert_allclose(rows.output, torch.softmax(torch.tensor([[1.0, 2], [3, 5]], dtype=torch.float64), 1).numpy())


@pytest.mark.parametrize("seed", range(5))
def test_dense_matches_torch_linear(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    x, w, b = rng.integers(-5, 6, n_in), rng.integers(-3, 4, (n_out, n_in)), rng.integers(-3, 4, n_out)
    c = explain_dense(x, w, b)
    want = F.linear(torch.from_numpy(x).double(), torch.from_numpy(w).double(), torch.from_numpy(b).double())
    assert c.output == want.tolist()
    assert c.to_dict()["params"]["total"] == torch.nn.Linear(n_in, n_out).weight.numel() + n_out
    assert all(step["expression"].endswith(f"= {v:g}") for step, v in zip(c.steps, c.output, strict=True))


def test_dense_text_and_errors() -> None:
    c = explain_dense("1 2", "1 0; 0.5 -1", "0 1")
    assert [s["expression"] for s in c.steps] == ["1*1 + 2*0 + 0 = 1", "1*0.5 + 2*(-1) + 1 = -0.5"]
    with pytest.raises(ValueError, match=r"`weights` must have one column per input value \(2\).*Received: weights shape=\(2, 3\), input size=2"):
        explain_dense("1 2", "1 0 1; 1 1 1")
    with pytest.raises(ValueError, match=r"`bias` must have one value per output unit \(2\). Received: bias size=3"):
        explain_dense("1 2", "1 0; 0 1", "1 2 3")
    with pytest.raises(ValueError, match=r"`input` must be a vector \(one row or one column\). Received: input shape=\(2, 2\)"):
        explain_dense("1 2; 3 4", "1 0")


def test_unknown_activation_suggests() -> None:
    with pytest.raises(ValueError, match=r"unknown activation. Did you mean relu.*Received: name='rellu'"):
        explain_activation("rellu", "1")
    with pytest.raises(TypeError, match=r"`slope` must be a finite number. Received: slope='x'"):
        explain_activation("leakyrelu", "1", slope="x")  # type: ignore[arg-type]
