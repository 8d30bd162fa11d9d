"""Frozen BatchNorm: never in training mode, statistics never move, and the summary says which BatchNorms would."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit.layers import FrozenBatchNorm1d, FrozenBatchNorm2d, freeze_statistics
from cnnkit.summarize import summary


def _trained_bn() -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(4)
    bn.train()
    with torch.no_grad():
        for _ in range(3):
            bn(torch.randn(8, 4, 5, 5) * 3 + 1)  # running statistics move away from (0, 1)
        bn.weight.mul_(2.0)
    return bn.eval()


def test_frozen_twin_shares_tensors_and_computes_what_eval_mode_computes() -> None:
    bn = _trained_bn()
    frozen = freeze_statistics(bn)
    assert isinstance(frozen, FrozenBatchNorm2d) and isinstance(frozen, nn.BatchNorm2d)
    assert frozen.weight is bn.weight and frozen.running_mean is bn.running_mean  # nothing copied
    assert list(frozen.state_dict()) == list(bn.state_dict())  # weights load into either
    x = torch.randn(6, 4, 5, 5)
    torch.testing.assert_close(frozen(x), bn(x), rtol=0, atol=0)


def test_train_mode_cannot_move_the_statistics() -> None:
    bn = _trained_bn()
    frozen = freeze_statistics(bn)
    mean, var, count = bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), frozen)
    model.train()
    assert not frozen.training and model.training
    frozen.training = True  # even forced, the forward normalises with the running statistics
    out = model(torch.randn(8, 3, 7, 7))
    out.sum().backward()
    assert torch.equal(frozen.running_mean, mean) and torch.equal(frozen.running_var, var)
    assert torch.equal(frozen.num_batches_tracked, count)
    assert frozen.weight.grad is not None  # its scale and shift still learn unless their parameters are frozen


def test_plain_batchnorm_with_frozen_parameters_still_moves() -> None:
    # the mistake this module exists for: requires_grad=False alone does not freeze a BatchNorm
    bn = _trained_bn()
    for param in bn.parameters():
        param.requires_grad_(False)
    mean = bn.running_mean.clone()
    bn.train()
    bn(torch.randn(8, 4, 5, 5))
    assert not torch.equal(bn.running_mean, mean)


def test_batchnorm1d_and_no_running_stats() -> None:
    bn = nn.BatchNorm1d(3)
    assert isinstance(freeze_statistics(bn), FrozenBatchNorm1d)
    with pytest.raises(ValueError, match=r"track_running_stats=False\): there are no running statistics to freeze"):
        freeze_statistics(nn.BatchNorm2d(3, track_running_stats=False))


def test_summary_trainable_column_shows_batchnorm_statistics() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
    for param in model[:4].parameters():
        param.requires_grad_(False)
    model[3] = freeze_statistics(model[3])
    rows = {row.name: row.trainable for row in summary(model, (1, 12, 12)).rows}
    assert rows["0"] == "no" and rows["2"] == "no"
    assert rows["1"] == "no, stats update"  # frozen parameters, moving statistics: flagged
    assert rows["3"] == "no, stats frozen"
    assert rows["5"] == "yes"  # an ordinary trainable BatchNorm
    notes = " ".join(summary(model, (1, 12, 12)).notes)
    assert "1 BatchNorm layer(s) (1) have frozen parameters but will still update their running statistics" in notes
