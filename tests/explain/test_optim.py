"""explain_update against torch.optim stepped on the same problem: weights, gradients and every state buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.explain import OPTIMIZERS, explain_update

# explain_update's names for each optimizer's state -> torch.optim's state keys
TORCH_STATE = {"momentum": {"velocity": "momentum_buffer"}, "adagrad": {"sum of squares": "sum"},
               "rmsprop": {"mean square": "square_avg"}, "adam": {"first moment": "exp_avg", "second moment": "exp_avg_sq"}}


def _torch_optimizer(name: str, w: torch.Tensor, h: dict[str, float]) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD([w], lr=h["lr"])
    if name == "momentum":
        return torch.optim.SGD([w], lr=h["lr"], momentum=h["momentum"])
    if name == "adagrad":
        return torch.optim.Adagrad([w], lr=h["lr"], eps=h["eps"])
    if name == "rmsprop":
        return torch.optim.RMSprop([w], lr=h["lr"], alpha=h["alpha"], eps=h["eps"])
    return torch.optim.Adam([w], lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])


def _torch_run(name: str, h: dict[str, float], w0: list[float], problem: dict[str, Any], steps: int) -> list[dict[str, Any]]:
    """Each step's gradient, the optimizer's state after it and the new weights, from torch.optim and autograd."""
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    optimizer = _torch_optimizer(name, w, h)
    rows = []
    for _ in range(steps):
        optimizer.zero_grad()
        if problem["kind"] == "quadratic":
            loss = 0.5 * (torch.tensor(problem["curvature"], dtype=torch.float64) * w**2).sum()
        else:
            x, y = torch.tensor(problem["inputs"], dtype=torch.float64), torch.tensor(problem["targets"], dtype=torch.float64)
            loss = F.mse_loss(x @ w, y)
        loss.backward()
        assert w.grad is not None
        gradient = w.grad.clone()
        optimizer.step()
        state = {key: value.clone() for key, value in optimizer.state[w].items() if torch.is_tensor(value) and value.ndim}
        rows.append({"gradient": gradient, "state": state, "weights": w.detach().clone()})
    return rows


def _assert_matches_torch(c: Any, name: str) -> None:
    h, problem, trajectory = c.extra["hyperparameters"], c.extra["problem"], c.extra["trajectory"]
    expected = _torch_run(name, h, c.inputs["weights"], problem, len(trajectory))
    for t, (ours, theirs) in enumerate(zip(trajectory, expected, strict=True), start=1):
        np.testing.assert_allclose(ours["gradient"], theirs["gradient"].numpy(), rtol=1e-9, atol=1e-9, err_msg=f"gradient, t={t}")
        np.testing.assert_allclose(ours["weights"], theirs["weights"].numpy(), rtol=1e-9, atol=1e-9, err_msg=f"weights, t={t}")
        for quantity, key in TORCH_STATE.get(name, {}).items():
            np.testing.assert_allclose(ours[quantity], theirs["state"][key].numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{quantity}, t={t}")
        if name == "adam":  # the bias-corrected moments, from torch's raw moments
            m, v = theirs["state"]["exp_avg"].numpy(), theirs["state"]["exp_avg_sq"].numpy()
            np.testing.assert_allclose(ours["bias-corrected m"], m / (1 - h["beta1"] ** t), rtol=1e-9)
            np.testing.assert_allclose(ours["bias-corrected v"], v / (1 - h["beta2"] ** t), rtol=1e-9)
    assert c.output == trajectory[-1]["weights"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_defaults_match_torch(name: str) -> None:
    c = explain_update(name)
    assert len(c.extra["trajectory"]) == 3
    _assert_matches_torch(c, name)


def _random_hyperparameters(name: str, rng: np.random.Generator) -> dict[str, float]:
    # eps as large as 0.5 sometimes, so that where eps sits (after or under the square root) changes the numbers
    eps = float(rng.choice([1e-8, 1e-3, 0.5]))
    options = {"momentum": {"momentum": float(rng.uniform(0.0, 0.95))}, "adagrad": {"eps": eps},
               "rmsprop": {"alpha": float(rng.uniform(0.5, 0.99)), "eps": eps},
               "adam": {"beta1": float(rng.uniform(0.5, 0.95)), "beta2": float(rng.uniform(0.8, 0.999)), "eps": eps}}
    return {"lr": float(rng.uniform(0.01, 0.3)), **options.get(name, {})}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("seed", range(4))
def test_random_problems_match_torch(name: str, seed: int) -> None:
    rng = np.random.default_rng(1000 * seed + OPTIMIZERS.index(name))
    n, steps = int(rng.integers(1, 5)), int(rng.integers(2, 7))
    weights = rng.normal(size=n)
    if seed % 2:
        m = int(rng.integers(2, 6))
        problem: dict[str, Any] = {"inputs": rng.normal(size=(m, n)), "targets": rng.normal(size=m)}
    else:
        problem = {"curvature": rng.uniform(0.2, 5.0, size=n)}
    c = explain_update(name, weights, steps=steps, **problem, **_random_hyperparameters(name, rng))
    _assert_matches_torch(c, name)


def test_eps_placement_is_torchs() -> None:
    """A gradient of 0.5 and eps = 1: after the square root the step is 0.5/(0.5 + 1); under it, 0.5/sqrt(1.25)."""
    c = explain_update("adagrad", "0.5", curvature="1", lr=1.0, eps=1.0, steps=1)
    assert c.output == pytest.approx([0.5 - 0.5 / 1.5])
    _assert_matches_torch(c, "adagrad")


def test_hand_worked_steps() -> None:
    sgd = explain_update("sgd")
    assert sgd.output == pytest.approx([0.729, 0.125])
    texts = [s["expression"] for s in sgd.steps]
    assert "g = a*w = (1*1, 5*1) = (1, 5)" in texts
    assert "w = w - step = (1, 1) - (0.1, 0.5) = (0.9, 0.5); loss 1.03" in texts

    momentum = explain_update("momentum")
    np.testing.assert_allclose([row["velocity"] for row in momentum.extra["trajectory"]], [[1, 5], [1.8, 7], [2.34, 5.3]])
    assert "v = mu*v + g = 0.9*(1, 5) + (0.9, 2.5) = (1.8, 7)" in [s["expression"] for s in momentum.steps]

    # Adam's first step is lr*sign(g) per weight; RMSprop's is lr/sqrt(1 - alpha) = 10*lr with torch's alpha 0.99
    adam = explain_update("adam", steps=1)
    assert adam.output == pytest.approx([0.9, 0.9])
    assert "m_hat = m/(1 - beta1^t) = (0.1, 0.5)/(1 - 0.9^1) = (0.1, 0.5)/0.1 = (1, 5)" in [s["expression"] for s in adam.steps]
    rmsprop = explain_update("rmsprop", steps=1, lr=0.001)
    assert rmsprop.extra["trajectory"][0]["step"] == pytest.approx([0.01, 0.01], rel=1e-6)


def test_least_squares_gradient_is_written_out() -> None:
    c = explain_update("sgd", inputs="1 2; 2 1; 3 1", targets="5 4 7", steps=1)
    gradient = c.steps[1]
    assert gradient["expression"] == "g = (2/m) X^T (X w - y) = (-22.6667, -14)"
    assert gradient["details"][1] == "r = X w - y = (0, 0, 0) - (5, 4, 7) = (-5, -4, -7)"
    assert gradient["details"][2] == "g_0 = (2/3)*(1*(-5) + 2*(-4) + 3*(-7)) = -22.6667"


@pytest.mark.parametrize(("name", "words"), [
    ("sgd", "w <- w - lr*g"),
    ("momentum", "torch.optim.SGD(momentum=mu) keeps v <- mu*v + g and steps w <- w - lr*v"),
    ("adagrad", "torch adds eps after the square root (some texts write sqrt(G + eps))"),
    ("rmsprop", "torch calls the decay alpha (default 0.99"),
    ("adam", "eps is added after the square root of the bias-corrected v_hat"),
])
def test_notes_say_which_convention(name: str, words: str) -> None:
    assert words in explain_update(name).notes[0]


def test_defaults_that_are_not_torchs_are_said() -> None:
    assert "torch.optim.Adam's own default is 0.001" in " ".join(explain_update("adam").notes)
    assert "torch.optim.SGD's default momentum is 0" in " ".join(explain_update("momentum").notes)
    assert not any("default" in note for note in explain_update("adam", lr=0.01).notes[1:])


def test_update_errors_name_the_argument_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"`optimizer` must be one of sgd, momentum, adagrad, rmsprop, adam. Did you mean adam.*Received: optimizer='adma'"):
        explain_update("adma")
    with pytest.raises(ValueError, match=r"`lr` must be a positive number. Received: lr=-0.1"):
        explain_update("sgd", lr=-0.1)
    with pytest.raises(ValueError, match=r"`momentum` is not used by the sgd optimizer \(it uses lr\). Received: optimizer='sgd', momentum=0.5"):
        explain_update("sgd", momentum=0.5)
    with pytest.raises(ValueError, match=r"`beta1` must be a number in \[0, 1\). Received: beta1=1"):
        explain_update("adam", beta1=1)
    with pytest.raises(ValueError, match=r"`steps` must be an int from 1 to 50 .*Received: steps=0"):
        explain_update("sgd", steps=0)
    with pytest.raises(ValueError, match=r"`weights` must have one value per curvature a_i \(2\). Received: weights='1 2 3'"):
        explain_update("sgd", "1 2 3")
    with pytest.raises(ValueError, match=r"`targets` must have one value per row of `inputs` \(2\). Received: targets='1'"):
        explain_update("sgd", inputs="1 2; 3 4", targets="1")
    with pytest.raises(ValueError, match=r"give `curvature` \(a quadratic\) or `inputs` and `targets` \(least squares\), not both"):
        explain_update("sgd", curvature="1 2", inputs="1 2; 3 4", targets="1 2")
    with pytest.raises(ValueError, match=r"the weights are no longer finite after step 1 .*Received: lr=1e\+200"):
        explain_update("sgd", "1e200", curvature="1", lr=1e200)
