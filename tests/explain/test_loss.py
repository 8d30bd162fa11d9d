"""explain_cross_entropy / explain_mse: every number of every step against torch (functional losses and autograd)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.explain import explain_cross_entropy, explain_mse

BATCH_LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]  # the brief's mini-batch; row 0 is the textbook 0.659 / 0.242 / 0.099
BATCH_LABELS = [0, 1]


def _numbers_after_equals(text: str) -> list[float]:
    """The number after each `=` in a step's expression (what the reader sees, to 6 significant digits)."""
    return [float(v) for v in re.findall(r"= (-?[\d.]+(?:e[-+]?\d+)?)", text)]


def _step(steps: list[dict], label: str) -> dict:
    return next(s for s in steps if s["label"] == label)


def _torch_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """J, each example's L, the probabilities and dJ/dz from torch."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(labels, dtype=torch.int64)
    cost = F.cross_entropy(z, y)
    cost.backward()
    assert z.grad is not None
    losses = F.cross_entropy(z.detach(), y, reduction="none")
    return cost.item(), losses.numpy(), F.softmax(z.detach(), dim=1).numpy(), z.grad.numpy()


def test_cross_entropy_hand_worked_batch() -> None:
    c = explain_cross_entropy("2 1 0.1; 0.5 2.5 0.3", "0 1")
    texts = {s["label"]: s["expression"] for s in c.steps}
    assert texts["example 0: exponentials"] == "e^(2 - 2) = 1, e^(1 - 2) = 0.367879, e^(0.1 - 2) = 0.149569"
    assert texts["example 0: sum"] == "1 + 0.367879 + 0.149569 = 1.51745"
    assert texts["example 0: probabilities"] == "p_0 = 1/1.51745 = 0.659001, p_1 = 0.367879/1.51745 = 0.242433, p_2 = 0.149569/1.51745 = 0.0985659"
    assert texts["example 0: loss"] == "L = -log p_0 = -log(0.659001) = 0.41703 (the true class is 0)"
    assert texts["example 1: loss"] == "L = -log p_1 = -log(0.802479) = 0.22005 (the true class is 1)"
    assert texts["cost"] == "J = (1/2)*(0.41703 + 0.22005) = 0.31854"
    assert texts["check"] == "cnnkit.reference.cross_entropy gives the same J"

    cost, losses, probabilities, grad = _torch_cross_entropy(np.array(BATCH_LOGITS), np.array(BATCH_LABELS))
    assert c.output == pytest.approx(cost, abs=1e-12)
    np.testing.assert_allclose(c.extra["losses"], losses, atol=1e-12)
    np.testing.assert_allclose(c.extra["probabilities"], probabilities, atol=1e-12)
    np.testing.assert_allclose(c.extra["grad_logits"], grad, atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_cross_entropy_every_step_matches_torch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, classes = int(rng.integers(1, 6)), int(rng.integers(2, 7))
    logits = rng.normal(scale=3.0, size=(m, classes))
    labels = rng.integers(0, classes, size=m)
    c = explain_cross_entropy(logits, labels)
    cost, losses, probabilities, grad = _torch_cross_entropy(logits, labels)

    assert c.output == pytest.approx(cost, abs=1e-12)
    np.testing.assert_allclose(c.extra["losses"], losses, atol=1e-12)
    np.testing.assert_allclose(c.extra["grad_logits"], grad, atol=1e-12)
    where = (lambda i: f"example {i}: ") if m > 1 else (lambda i: "")
    for i in range(m):
        z = torch.tensor(logits[i])
        shown = _numbers_after_equals(_step(c.steps, f"{where(i)}exponentials")["expression"])
        np.testing.assert_allclose(shown, torch.exp(z - z.max()).numpy(), rtol=1e-5)  # printed to 6 digits
        np.testing.assert_allclose(_step(c.steps, f"{where(i)}probabilities")["values"], probabilities[i], atol=1e-12)
        assert _step(c.steps, f"{where(i)}loss")["value"] == pytest.approx(losses[i], abs=1e-12)
        np.testing.assert_allclose(_step(c.steps, f"{where(i)}dL/dz")["values"], grad[i] * m, atol=1e-12)
    assert _step(c.steps, "cost")["value"] == pytest.approx(cost, abs=1e-12)
    assert c.extra["agrees_with_reference"]


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0]])
    c = explain_cross_entropy(logits, [2])
    cost, *_ = _torch_cross_entropy(logits, np.array([2]))
    assert c.output == pytest.approx(cost) == pytest.approx(2000.0)
    assert "e^(1000 - 1000) = 1" in _step(c.steps, "exponentials")["expression"]


def _torch_mse(predictions: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    p = torch.tensor(predictions, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(targets, dtype=torch.float64)
    cost = F.mse_loss(p, t)
    cost.backward()
    assert p.grad is not None
    per_example = F.mse_loss(p.detach(), t, reduction="none").mean(dim=1)
    return cost.item(), per_example.numpy(), p.grad.numpy()


def test_mse_hand_worked_batch() -> None:
    c = explain_mse("1.5 2; 0 1", "1 2; 1 -1")
    texts = {s["label"]: s["expression"] for s in c.steps}
    assert texts["example 1: differences"] == "ŷ - y = 0 - 1 = -1, 1 - (-1) = 2"
    assert texts["example 1: squares"] == "(-1)^2 = 1, 2^2 = 4"
    assert texts["example 1: loss"] == "L = (1 + 4)/2 = 2.5"
    assert texts["cost"] == "J = (1/2)*(0.125 + 2.5) = 1.3125"
    cost, losses, grad = _torch_mse(np.array([[1.5, 2], [0, 1]]), np.array([[1, 2], [1, -1]]))
    assert c.output == cost == 1.3125
    np.testing.assert_allclose(c.extra["losses"], losses, atol=1e-12)
    np.testing.assert_allclose(c.extra["grad_predictions"], grad, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_mse_matches_torch(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    m, n = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    predictions, targets = rng.normal(size=(m, n)), rng.normal(size=(m, n))
    c = explain_mse(predictions, targets)
    cost, losses, grad = _torch_mse(predictions, targets)
    assert c.output == pytest.approx(cost, abs=1e-12)
    np.testing.assert_allclose(c.extra["losses"], losses, atol=1e-12)
    np.testing.assert_allclose(c.extra["grad_predictions"], grad, atol=1e-12)
    where = "example 0: " if m > 1 else ""
    np.testing.assert_allclose(_step(c.steps, f"{where}differences")["values"], predictions[0] - targets[0], atol=1e-12)
    np.testing.assert_allclose(_step(c.steps, f"{where}squares")["values"], (predictions[0] - targets[0]) ** 2, atol=1e-12)


def test_loss_errors_name_the_argument_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 3\) .*Received: labels='0 3'"):
        explain_cross_entropy("2 1 0.1; 0.5 2.5 0.3", "0 3")
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 3\) .*Received: labels='-1 0'"):
        explain_cross_entropy("2 1 0.1; 0.5 2.5 0.3", "-1 0")
    with pytest.raises(ValueError, match=r"one class index per row of `logits` \(2 row\(s\)\). Received: labels='0 1 2' \(3 value\(s\)\)"):
        explain_cross_entropy("2 1 0.1; 0.5 2.5 0.3", "0 1 2")
    with pytest.raises(ValueError, match=r"`labels` must be whole numbers.*Received: labels='0.5'"):
        explain_cross_entropy("2 1 0.1", "0.5")
    with pytest.raises(ValueError, match=r"`labels` must be whole numbers.*Received: labels='cat'"):
        explain_cross_entropy("2 1 0.1", "cat")
    with pytest.raises(ValueError, match=r"`targets` must have the shape of `predictions` \(1, 2\).*Received: targets='1 2 3' \(shape \(1, 3\)\)"):
        explain_mse("1 2", "1 2 3")


def test_a_probability_too_small_to_write_is_not_written_as_log_of_zero() -> None:
    from cnnkit.explain.loss import explain_cross_entropy

    found = explain_cross_entropy("1000 0 -1000", "1")
    loss = next(s for s in found.to_dict()["steps"] if s["label"].endswith("loss"))
    assert "-log(0)" not in loss["expression"] and "log(1) - (0 - 1000) = 1000" in loss["expression"]
    expected = float(torch.nn.functional.cross_entropy(torch.tensor([[1000.0, 0.0, -1000.0]]), torch.tensor([1])))
    assert loss["value"] == pytest.approx(expected)
