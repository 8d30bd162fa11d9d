"""`cnnkit explain gradients`: the per-layer gradient norms are torch.autograd's on the stated network and batch,
the factor is their ratio, and the plain network's first layer really gets the smaller gradient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit import models
from cnnkit.cli import main
from cnnkit.training.gradient_flow import GradientFlowConfig, layer_gradient_norms, measure, training_images

pytest.importorskip("sklearn", reason="the digits dataset comes with scikit-learn")

# small enough for a test: 8 layers on the 8x8 digits, three steps
TINY = GradientFlowConfig(data="digits", depth=8, steps=3, images=256, measure_images=64, batch_size=32)
FLAGS = ["--data", "digits", "--depth", "8", "--steps", "3", "--images", "256", "--measure-images", "64",
         "--batch-size", "32"]


def _backward_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """The reference: loss.backward(), then each Conv2d / Linear weight's .grad norm."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    norms = [float(m.weight.grad.norm()) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    model.zero_grad(set_to_none=True)
    return norms


def test_layer_gradient_norms_equal_backward() -> None:
    torch.manual_seed(1)
    model = models.create("residual_deep", depth=8, width=4).train()
    x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 10, (16,))
    norms, loss = layer_gradient_norms(model, x, y)
    assert [name for name, _, _ in norms] == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1",
                                             "layer2.0.conv2", "layer3.0.conv1", "layer3.0.conv2", "fc"]
    assert all(p.grad is None for p in model.parameters())  # measured without touching .grad
    torch.testing.assert_close([n for _, _, n in norms], _backward_norms(model, x, y), rtol=1e-5, atol=0)
    assert loss == pytest.approx(float(F.cross_entropy(model(x), y).detach()), rel=1e-6)


def test_measured_norms_are_autograd_on_the_same_weights_and_batch() -> None:
    result = measure(TINY)
    x, y, _ = training_images(TINY)
    probe_x, probe_y = x[: TINY.measure_images], y[: TINY.measure_images]
    for net in result.networks:
        torch.manual_seed(TINY.seed)  # the initial weights: the same seed builds them again
        fresh = models.create(net.name, num_classes=10, in_channels=1, depth=8).train()
        torch.testing.assert_close([layer.init for layer in net.layers], _backward_norms(fresh, probe_x, probe_y),
                                   rtol=1e-5, atol=0)
        assert net.model is not None  # the trained network: after the steps, its own gradients
        torch.testing.assert_close([layer.trained for layer in net.layers],
                                   _backward_norms(net.model, probe_x, probe_y), rtol=1e-5, atol=0)
        assert [layer.init for layer in net.layers] != [layer.trained for layer in net.layers]
        assert len(net.train_losses) == TINY.steps
    plain, residual = result.networks
    assert result.factor(1) == residual.layers[0].init / plain.layers[0].init
    # the slides' claim, measured: the plain network's first layer gets a gradient over 10x smaller, and within it the
    # gradient shrinks from the last layer to the first far more than with skips
    assert result.factor(1) > 10 and plain.first_to_last() < residual.first_to_last() / 10


def test_cli_text_json_and_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figure = tmp_path / "gradients.png"
    assert main(["explain", "gradients", *FLAGS, "--json", "--figure", str(figure)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [net["model"] for net in data["networks"]] == ["plain_deep", "residual_deep"]
    first = [net["layers"][0]["init"] for net in data["networks"]]
    trained = [net["layers"][0]["trained"] for net in data["networks"]]
    assert data["first_layer_factor"] == [{"model": "residual_deep", "against": "plain_deep",
                                           "init": first[1] / first[0], "trained": trained[1] / trained[0]}]
    assert data["networks"][0]["params"] == data["networks"][1]["params"] == 74_762
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data["figure"] == str(figure)
    assert main(["explain", "gradients", *FLAGS]) == 0
    text = capsys.readouterr().out
    assert f"gets a gradient {first[1] / first[0]:.3g} times that of plain_deep at initialisation" in text
    assert "layer3.0.conv2" in text and "first layer / last layer" in text and "the vanishing gradient" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--depth", "9"], "--depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, ...). Received: --depth 9"),
    (["--steps", "0"], "--steps must be a positive int. Received: --steps 0"),
    (["--model", "lenet5", "--depth", "8"], "--depth: model lenet5 has no `depth` option"),
    (["--model", "unet"], "--model must be a classification network (cnnkit models). Received: --model unet"),
    (["--model", "resnt18"], "--model: unknown model 'resnt18'. Did you mean 'resnet18'"),
    (["--images", "10", "--measure-images", "20"], "--measure-images must be at most --images (10)"),
    (["--figure", "out.jpg"], "--figure must name a .png file. Received: --figure out.jpg"),
    (["--lr", "0"], "--lr must be a positive number below 10. Received: --lr 0.0"),
    (["--seed", "-1"], "--seed must be a non-negative int. Received: --seed -1"),
])
def test_bad_flags_are_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "gradients", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and message in err and err.count("\n") == 1
