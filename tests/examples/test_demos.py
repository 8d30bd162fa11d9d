"""The measured demonstrations in examples/: their core functions on small inputs, where the right answer is known.

The scripts themselves train on Fashion-MNIST for half a minute; here each measurement is checked where theory
says what it must give (a convolution without padding is exactly equivariant under a circular shift; 2x2 pooling is
not, for an odd shift), and the small models train in well under a second.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"cnnkit_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


eq = _example("translation_equivariance")
sep = _example("linear_vs_nonlinear")
ae = _example("autoencoder_uses")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One thread, as the scripts run: tiny batches on two OpenMP threads spin against any other busy process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- translation equivariance


@pytest.fixture
def conv() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(1, 4, 3, padding=0)


def test_a_convolution_without_padding_is_equivariant_under_a_circular_shift(conv: nn.Conv2d) -> None:
    x = torch.rand(3, 1, 16, 16)
    for pixels in range(5):
        assert eq.equivariance_error(conv, x, pixels, margin=pixels) < 1e-6
    # the same measurement sees the border where it is not left out: padding breaks equivariance there
    padded = nn.Conv2d(1, 4, 3, padding=1)
    assert eq.equivariance_error(padded, x, 3, margin=0) > 0.05
    assert eq.equivariance_error(padded, x, 3, margin=4) < 1e-6


def test_pooling_keeps_even_shifts_and_breaks_odd_ones(conv: nn.Conv2d) -> None:
    x = torch.rand(3, 1, 18, 18)

    def pooled(images: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(conv(images), 2)  # (N, 4, 8, 8)

    assert eq.equivariance_error(pooled, x, 2, scale=2, margin=2) < 1e-6  # 2 pixels are 1 cell
    assert eq.equivariance_error(pooled, x, 4, scale=2, margin=3) < 1e-6
    for odd in (1, 3):  # half a cell: neither neighbouring whole shift matches
        assert eq.equivariance_error(pooled, x, odd, scale=2, margin=3) > 0.2
    with pytest.raises(ValueError, match=r"`margin` \(4\) leaves no column of the 8-wide maps"):
        eq.equivariance_error(pooled, x, 1, scale=2, margin=4)


def test_shift_moves_the_image_circularly_or_with_zeros() -> None:
    x = torch.arange(1.0, 6.0).reshape(1, 1, 1, 5)
    assert eq.shift(x, 2).flatten().tolist() == [4, 5, 1, 2, 3]
    assert eq.shift(x, 2, circular=False).flatten().tolist() == [0, 0, 1, 2, 3]
    assert eq.shift(x, 0, circular=False).flatten().tolist() == [1, 2, 3, 4, 5]


class _Column(nn.Module):
    """Predicts the column of the brightest pixel: as position-dependent as a classifier can be."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(1, 2))  # (N, W) scores


class _Total(nn.Module):
    """Predicts from the image's total brightness only: invariant to any shift that keeps the image inside."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.sum(dim=(1, 2, 3))
        return torch.stack([total, 3 - total], 1)


def test_agreement_counts_unchanged_predictions() -> None:
    images = torch.zeros(6, 1, 8, 8)
    for i in range(6):
        images[i, 0, i, 1] = 1 + i % 2  # one bright pixel, well inside the image
    assert eq.agreement(_Total(), images, 3) == 1.0
    assert eq.agreement(_Column(), images, 0) == 1.0
    assert eq.agreement(_Column(), images, 2) == 0.0


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_the_small_cnn_gives_ten_scores_and_maps_of_the_documented_shapes(head: str) -> None:
    net = eq.SmallCNN(head)
    x = torch.rand(2, 1, 28, 28)
    assert net(x).shape == (2, 10)
    assert net.conv1_maps(x).shape == (2, 12, 28, 28) and net.pool1_maps(x).shape == (2, 12, 14, 14)
    assert net.conv2_maps(x).shape == (2, 24, 14, 14)


# ----------------------------------------------------------------------------- linear vs non-linear


def _split(name: str) -> tuple[np.ndarray, ...]:
    x, y = sep.make_data(name, 300, 0.1, 0)
    return x[::2], x[1::2], y[::2], y[1::2]


def test_circles_need_the_non_linearity() -> None:
    x_train, x_test, y_train, y_test = _split("circles")
    accuracies = {}
    for kind in sep.MODELS:
        torch.manual_seed(0)
        accuracies[kind] = sep.accuracy(sep.fit(sep.build(kind), x_train, y_train, 300, 0.02), x_test, y_test)
    assert accuracies["linear"] < 0.7 and accuracies["deep linear"] < 0.7  # no line separates two rings
    assert accuracies["relu"] > 0.95


def test_a_line_is_enough_for_blobs() -> None:
    x_train, x_test, y_train, y_test = _split("blobs")
    torch.manual_seed(0)
    assert sep.accuracy(sep.fit(sep.build("linear"), x_train, y_train, 300, 0.02), x_test, y_test) > 0.95


def test_deep_linear_is_one_matrix() -> None:
    torch.manual_seed(0)
    model = sep.build("deep linear")
    w1, w2, w3 = (layer.weight for layer in model)
    b1, b2, b3 = (layer.bias for layer in model)
    weight, bias = w3 @ w2 @ w1, w3 @ (w2 @ b1 + b2) + b3  # the single affine map the three layers compose to
    x = torch.randn(50, 2)
    torch.testing.assert_close(model(x), x @ weight.T + bias)


def test_decision_grid_is_the_prediction_at_each_point() -> None:
    torch.manual_seed(0)
    model = sep.build("relu")
    xs, ys, classes = sep.decision_grid(model, -1.0, 1.0, resolution=7)
    assert xs.shape == ys.shape == classes.shape == (7, 7)
    assert xs[0, 0] == -1 and xs[0, -1] == 1 and ys[-1, 0] == 1
    np.testing.assert_array_equal(classes.ravel(), sep.predict(model, np.stack([xs.ravel(), ys.ravel()], 1)))


def test_the_separability_figure(tmp_path: Path) -> None:
    config = sep.Config(points=120, steps=60)
    results = sep.run(config)
    assert set(results) == set(sep.DATASETS) and all(set(row) == set(sep.MODELS) for row in results.values())
    path = sep.draw(config, results, tmp_path / "sep.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and np.asarray(image.convert("L")).std() > 10


# ----------------------------------------------------------------------------- autoencoder


def test_reconstruction_errors_are_per_image_mse() -> None:
    x = torch.rand(5, 1, 28, 28)
    assert ae.reconstruction_errors(nn.Identity(), x, batch=2).tolist() == [0.0] * 5
    zeros = ae.reconstruction_errors(_Zeros(), x, batch=2)
    torch.testing.assert_close(zeros, (x ** 2).mean(dim=(1, 2, 3)))


class _Zeros(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_anomaly_auc_is_the_chance_an_anomaly_scores_higher() -> None:
    assert ae.anomaly_auc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1])) == 1.0
    assert ae.anomaly_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([0, 0, 1, 1])) == 0.0
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 60).astype(float), rng.random(60) < 0.3
    pairs = [(a, n) for a in scores[labels] for n in scores[~labels]]
    expected = np.mean([1.0 if a > n else 0.5 if a == n else 0.0 for a, n in pairs])  # ties count half
    assert ae.anomaly_auc(scores, labels) == pytest.approx(expected)


def test_interpolation_runs_from_one_code_to_the_other() -> None:
    start, end = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    line = ae.interpolate(start, end, 5)
    assert line.shape == (5, 2)
    assert line[0].tolist() == [0, 2] and line[-1].tolist() == [4, -2] and line[2].tolist() == [2, 0]


def test_gaussian_codes_have_the_codes_mean_and_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    codes = torch.randn(4000, 3, generator=generator) @ torch.tensor([[2.0, 0, 0], [1, 1, 0], [0, 0.5, 0.2]]) + 3
    samples = ae.gaussian_codes(codes, 20000, generator)
    torch.testing.assert_close(samples.mean(0), codes.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), torch.cov(codes.T), atol=0.1, rtol=0.05)


def test_the_held_out_class_by_name_or_index() -> None:
    names = ("T-shirt/top", "Trouser", "Bag")
    assert ae.class_index("bag", names) == 2 and ae.class_index("1", names) == 1
    with pytest.raises(ValueError, match=r"`--held-out` must be one of T-shirt/top, Trouser, Bag \(or its index\). Received: --held-out='Sock'"):
        ae.class_index("Sock", names)


def test_training_the_zoo_autoencoder_lowers_its_error() -> None:
    from cnnkit import models

    torch.manual_seed(0)
    images = torch.zeros(64, 1, 28, 28)
    images[::2, :, 6:22, 10:18] = 1.0  # bars and squares
    images[1::2, :, 8:20, 8:20] = 0.7
    model = models.create("conv_autoencoder", latent=4, width=4)
    before = float(ae.reconstruction_errors(model, images).mean())
    ae.train(model, images, ae.Config(epochs=15, batch_size=16, lr=1e-2))
    assert float(ae.reconstruction_errors(model, images).mean()) < 0.5 * before
    assert not model.training  # left in eval mode for scoring
