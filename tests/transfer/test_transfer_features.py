"""Extract's multi-layer features: layer outputs pooled on a grid, concatenated and standardised, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit import arith
from cnnkit.transfer import Features, blocks
from cnnkit.transfer.features import tap_layers
from cnnkit.transfer.net import InputAdapter, TransferNet
from cnnkit.transfer.taps import FeatureTaps


def _network() -> nn.Sequential:
    """(N, 1, 7, 7) -> (N, 3); layer "7" is the classifier."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 0-2: (4, 7, 7) -> (4, 3, 3)
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),  # 3-4: (6, 3, 3)
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))  # 5-7: (6,) -> (3,)


def _grid_pool(output: np.ndarray, grid: int) -> np.ndarray:
    """Average over each cell of a grid, by hand: rows floor(i*H/g) to ceil((i+1)*H/g), as adaptive pooling cuts them."""
    n, c, h, w = output.shape
    gh, gw = min(grid, h), min(grid, w)
    cells = np.zeros((n, c, gh, gw))
    for i in range(gh):
        for j in range(gw):
            rows = slice(i * h // gh, math.ceil((i + 1) * h / gh))
            cols = slice(j * w // gw, math.ceil((j + 1) * w / gw))
            cells[:, :, i, j] = output[:, :, rows, cols].mean(axis=(2, 3))
    return cells.reshape(n, -1)  # channel-major: (c, i, j)


def test_pooled_standardised_features_match_a_hand_computation_with_hooks() -> None:
    network = _network()
    layers, shapes = tap_layers(network, "7", blocks(network, "7"), Features.parse("1,4,6"), torch.zeros(1, 1, 7, 7))
    assert layers == ["1", "4", "6"] and shapes == [(4, 7, 7), (6, 3, 3), (6,)]
    taps = FeatureTaps(layers, shapes, grid=2)
    assert taps.sizes == [4 * 2 * 2, 6 * 2 * 2, 6] and taps.num_features == 46
    net = TransferNet(InputAdapter(1, 1, (7, 7), (0.0,), (1.0,)), network, "7", taps).eval()
    x = torch.rand(5, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    # by hand: the raw outputs through our own hooks, pooled cell by cell, standardised with NumPy
    raw: dict[str, torch.Tensor] = {}
    handles = [network.get_submodule(n).register_forward_hook(lambda m, a, out, n=n: raw.__setitem__(n, out))
               for n in layers]
    with torch.no_grad():
        network(x)
    for handle in handles:
        handle.remove()
    pieces = [_grid_pool(raw["1"].numpy(), 2), _grid_pool(raw["4"].numpy(), 2), raw["6"].numpy()]
    pooled = np.concatenate(pieces, axis=1)  # (5, 46)
    with torch.no_grad(), net.headless():
        np.testing.assert_allclose(net(x).numpy(), pooled, rtol=1e-5, atol=1e-6)  # not fitted yet: raw pooled
        taps.fit(torch.from_numpy(pooled).float())
        standardised = net(x).numpy()
    std = pooled.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)
    widths = np.repeat(np.sqrt(taps.sizes), taps.sizes)  # each feature's layer: sqrt of that layer's piece
    expected = (pooled - pooled.mean(axis=0)) / (std * widths)
    np.testing.assert_allclose(standardised, expected, rtol=1e-4, atol=1e-5)
    # each layer's piece has a mean squared norm of 1 on the training images, whatever its width (less the share of
    # its features that are constant there, e.g. a ReLU never active: those are centred, not scaled)
    varying = pooled.std(axis=0) > 1e-6
    for piece, live in zip(np.split(expected, np.cumsum(taps.sizes)[:-1], axis=1),
                           np.split(varying, np.cumsum(taps.sizes)[:-1]), strict=True):
        assert abs((piece**2).sum(axis=1).mean() - live.mean()) < 1e-4
    # the whole network: the classifier, now a (46 -> 3) head, reads the standardised features
    network[7] = nn.Linear(46, 3)
    with torch.no_grad():
        logits = net(x)
        np.testing.assert_allclose(logits.numpy(), network[7](torch.from_numpy(expected).float()).numpy(), atol=1e-5)
    taps.reset()
    assert torch.equal(taps.mean, torch.zeros(46)) and torch.equal(taps.scale, torch.ones(46))


class _SharedRelu(nn.Module):
    """One ReLU module called after both convolutions: it has no single output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv2(self.relu(self.conv1(x))))  # (N, 2, H - 4, W - 4)
        return self.fc(x.mean((2, 3)))


def test_block_outputs_skip_layers_that_run_twice_and_bad_names_are_refused() -> None:
    model = _SharedRelu()
    found = blocks(model, "fc")
    assert [b.layers for b in found] == [("conv1",), ("conv2", "relu")]
    x = torch.zeros(1, 1, 9, 9)
    assert tap_layers(model, "fc", found, Features.parse("all"), x) == (["conv1", "conv2"], [(2, 7, 7), (2, 5, 5)])
    assert tap_layers(model, "fc", found, Features.parse("blocks:1"), x)[0] == ["conv2"]
    assert tap_layers(model, "fc", found, Features.parse("last"), x) == ([], [])
    with pytest.raises(ValueError, match=r"layer 'relu' must run once per pass .* Received: it ran 2 times"):
        tap_layers(model, "fc", found, Features.parse("conv1,relu"), x)
    with pytest.raises(ValueError, match=r"no layer 'conv3'\. Did you mean conv\d, conv\d\?"):
        tap_layers(model, "fc", found, Features.parse("conv3"), x)
    with pytest.raises(ValueError, match=r"'fc' is or holds the classifier 'fc'"):
        tap_layers(model, "fc", found, Features.parse("fc"), x)
    with pytest.raises(ValueError, match=r"the base network has 2 blocks before its classifier; N must be 1 to 2"):
        tap_layers(model, "fc", found, Features.parse("blocks:3"), x)
    net = TransferNet(InputAdapter(1, 1, (9, 9), (0.0,), (1.0,)), model, "fc",
                      FeatureTaps(["relu"], [(2, 5, 5)], grid=2))
    with pytest.raises(ValueError, match=r"each tapped layer must run once before the classifier.*\{'relu': 2\}"):
        net(x)


def test_grid_arithmetic() -> None:
    assert arith.grid_pool_bins((7, 7), 2) == (2, 2) and arith.grid_pool_bins((1, 5), 2) == (1, 2)
    assert arith.grid_pool_features((64, 7, 7), 2) == 256 and arith.grid_pool_features((64, 1, 1), 3) == 64
    assert arith.grid_pool_features((1280,), 2) == 1280
    with pytest.raises(ValueError, match=r"\(C, H, W\) map or \(F,\) features. Received: shape=\(2, 3\)"):
        arith.grid_pool_features((2, 3), 2)
    with pytest.raises(ValueError, match=r"`grid` must be an int >= 1. Received: grid=0"):
        arith.grid_pool_bins((7, 7), 0)


def test_features_parse() -> None:
    assert Features.parse("all") == Features("all") and Features.parse(" last ") == Features("last")
    assert Features.parse("blocks:3") == Features("blocks", blocks=3)
    assert Features.parse("features.13, classifier.0") == Features("layers", layers=("features.13", "classifier.0"))
    assert str(Features.parse("features.13,classifier.0")) == "features.13,classifier.0"
    with pytest.raises(ValueError, match=r"--features blocks:N needs N >= 1. Received: 'blocks:0'"):
        Features.parse("blocks:0")
    with pytest.raises(ValueError, match=r"--features must be all, last, blocks:N .* Received: 'layer 3'"):
        Features.parse("layer 3")
