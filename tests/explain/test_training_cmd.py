"""`cnnkit explain loss`, `update` and `backprop` (stride, padding, dilation, pooling) through the command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.cli import explain_cmd, main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cnnkit")
    explain_cmd.add_parser(parser.add_subparsers(dest="command"), "explain", "explain")
    code = explain_cmd.run(parser.parse_args(["explain", *argv]))
    return code, capsys.readouterr().out


def test_loss_cross_entropy_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["loss", "cross-entropy", "--logits", "2 1 0.1; 0.5 2.5 0.3", "--labels", "0 1"]
    code, out = _run(argv, capsys)
    assert code == 0
    assert "example 0: probabilities: p_0 = 1/1.51745 = 0.659001" in out
    assert "cost: J = (1/2)*(0.41703 + 0.22005) = 0.31854" in out
    data = json.loads(_run([*argv, "--json"], capsys)[1])
    logits = torch.tensor([[2, 1, 0.1], [0.5, 2.5, 0.3]], dtype=torch.float64)
    assert data["output"] == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 1])).item(), abs=1e-12)
    assert data["inputs"]["labels"] == [0, 1]
    np.testing.assert_allclose(data["probabilities"][0], [0.659001, 0.242433, 0.0985659], atol=1e-6)


def test_loss_mse_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["loss", "mse", "--predictions", "1.5 2; 0 1", "--targets", "1 2; 1 -1", "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    expected = F.mse_loss(torch.tensor([[1.5, 2], [0, 1]]), torch.tensor([[1.0, 2], [1, -1]])).item()
    assert data["output"] == pytest.approx(expected) and data["losses"] == [0.125, 2.5]


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_update_json_matches_torch(optimizer: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["update", "--optimizer", optimizer, "--steps", "4", "--lr", "0.05", "--weights", "2 -1",
                      "--curvature", "3 0.5", "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    w = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    torch_optimizer = (torch.optim.SGD([w], lr=0.05, momentum=0.9) if optimizer == "momentum"
                       else torch.optim.Adam([w], lr=0.05))
    for row in data["trajectory"]:
        torch_optimizer.zero_grad()
        (0.5 * (torch.tensor([3.0, 0.5], dtype=torch.float64) * w**2).sum()).backward()
        torch_optimizer.step()
        np.testing.assert_allclose(row["weights"], w.detach().numpy(), atol=1e-9)


def test_update_text_says_the_convention(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["update", "--optimizer", "rmsprop", "--alpha", "0.9", "--steps", "2"], capsys)
    assert code == 0
    assert "t=1 mean square: s = alpha*s + (1 - alpha)*g^2 = 0.9*(0, 0) + 0.1*(1, 25) = (0.1, 2.5)" in out
    assert "note: torch.optim.RMSprop: s <- alpha*s + (1 - alpha)*g^2" in out
    assert "t=2 weights:" in out and "t=3" not in out


def test_backprop_conv_with_stride_padding_dilation_json(capsys: pytest.CaptureFixture[str]) -> None:
    x = np.arange(1.0, 50.0).reshape(7, 7)
    code, out = _run(["backprop", "conv", "--input", json.dumps(x.tolist()), "--kernel", "1 0 -1; 2 0 -2; 1 0 -1",
                      "--stride", "2", "--padding", "1", "--dilation", "2", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["agrees_with_reference"]
    tx = torch.tensor(x, requires_grad=True)
    k = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=torch.float64, requires_grad=True)
    F.conv2d(tx[None, None], k[None, None], stride=2, padding=1, dilation=2).sum().backward()
    assert tx.grad is not None and k.grad is not None
    assert data["output"]["grad_input"] == tx.grad.tolist()
    assert data["output"]["grad_weight"] == k.grad.tolist()


def test_backprop_pool_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["backprop", "pool", "--input", "4 -3 -1; -2 3 -3; -3 2 3", "--size", "2", "--stride", "1"], capsys)
    assert code == 0
    assert "dL/dX[1,1] = 1 (from [0,1]) + 1 (from [1,0]) + 1 (from [1,1]) = 3" in out
    code, out = _run(["backprop", "pool", "--input", "1 3 2 1; 3 6 8 9; 8 3 3 9; 4 6 8 2", "--size", "2", "--mode", "avg",
                      "--json"], capsys)
    assert json.loads(out)["output"]["grad_input"] == [[0.25] * 4] * 4


@pytest.mark.parametrize(("argv", "message"), [
    (["update", "--optimizer", "adma"], "`optimizer` must be one of sgd, momentum, adagrad, rmsprop, adam. Did you mean adam"),
    (["update", "--lr", "-0.1"], "`lr` must be a positive number. Received: lr=-0.1"),
    (["update", "--optimizer", "sgd", "--momentum", "0.5"], "`momentum` is not used by the sgd optimizer (it uses lr). Received: optimizer='sgd', momentum=0.5"),
    (["update", "--weights", "1 2 3"], "`weights` must have one value per curvature a_i (2). Received: weights='1 2 3'"),
    (["loss", "cross-entropy", "--logits", "2 1 0.1; 0.5 2.5 0.3", "--labels", "0 3"], "`labels` must be class indices in [0, 3)"),
    (["loss", "cross-entropy", "--logits", "2 1 0.1; 0.5 2.5 0.3", "--labels", "0"],
     "`labels` must hold one class index per row of `logits` (2 row(s)). Received: labels='0' (1 value(s))"),
    (["loss", "cross-entropy", "--logits", "2 1 0.1"], "`--labels` is required for loss cross-entropy. Received: no --labels"),
    (["loss", "mse", "--predictions", "1 2", "--targets", "1 2 3"], "`targets` must have the shape of `predictions` (1, 2)"),
    (["backprop", "pool", "--input", "1 2; 3 4"], "`--size` is required for backprop pool. Received: no --size"),
    (["backprop", "pool", "--input", "1 2; 3 4", "--size", "2", "--kernel", "1"], "`--kernel` is not used by backprop pool (pooling has no weights). Received: --kernel='1'"),
    (["backprop", "conv", "--input", "1 2; 3 4", "--kernel", "1", "--stride", "0"], "`stride` must be at least 1. Received: stride=0"),
    (["backprop", "conv", "--input", "1 2; 3 4", "--kernel", "1", "--padding", "-1"], "`--padding` must be a non-negative int, 'same' or 'valid'. Received: --padding='-1'"),
])
def test_user_errors_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("cnnkit: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
