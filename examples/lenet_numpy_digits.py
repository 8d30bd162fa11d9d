"""Train a small LeNet on scikit-learn's 8x8 digits twice: in NumPy with cnnkit.reference, and in PyTorch.

The NumPy run uses only the reference forward and backward functions and plain
SGD with momentum written out below; the PyTorch run is the same network, the
same initial weights, the same batches and ``torch.optim.SGD``, in float64, so
the two runs follow the same trajectory and the final weights agree to many
digits. Needs scikit-learn (``pip install scikit-learn``)::

    python examples/lenet_numpy_digits.py [--epochs 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from torch import nn

from cnnkit import reference as R

Params = dict[str, np.ndarray]
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    epochs: int = 8
    batch_size: int = 32
    lr: float = 0.03
    momentum: float = 0.9
    seed: int = 0
    upsample: int = 2  # 8x8 digits -> 16x16, so that LeNet's two 5x5 convolutions and 2x2 pools fit


# ----------------------------------------------------------------------------- data


def load_data(config: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as ``(N, 1, 16, 16)`` float64, standardised with the training set's mean and std."""
    digits = load_digits()
    images = digits.images[:, None].repeat(config.upsample, axis=2).repeat(config.upsample, axis=3)  # (N, 1, 16, 16)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=config.seed, stratify=digits.target
    )
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


# ----------------------------------------------------------------------------- the network in NumPy


def init_params(rng: np.random.Generator) -> Params:
    """PyTorch's default initialisation: uniform in +-1/sqrt(fan_in) for weights and biases."""
    shapes = {
        "conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,),
        "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
        "fc1.weight": (120, 64), "fc1.bias": (120,),
        "fc2.weight": (84, 120), "fc2.bias": (84,),
        "fc3.weight": (10, 84), "fc3.bias": (10,),
    }
    params = {}
    for name, shape in shapes.items():
        layer = name.split(".")[0]
        fan_in = int(np.prod(shapes[f"{layer}.weight"][1:]))
        params[name] = rng.uniform(-1, 1, shape) / np.sqrt(fan_in)
    return params


def forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits ``(N, 10)`` and the activations the backward pass needs."""
    p = params
    a1 = R.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=2)  # (N, 6, 16, 16)
    r1 = R.relu(a1)
    m1 = R.max_pool2d(r1, 2)  # (N, 6, 8, 8)
    a2 = R.conv2d(m1, p["conv2.weight"], p["conv2.bias"])  # (N, 16, 4, 4)
    r2 = R.relu(a2)
    m2 = R.max_pool2d(r2, 2)  # (N, 16, 2, 2)
    f = R.flatten(m2, 1)  # (N, 64)
    h1 = R.linear(f, p["fc1.weight"], p["fc1.bias"])  # (N, 120)
    g1 = R.relu(h1)
    h2 = R.linear(g1, p["fc2.weight"], p["fc2.bias"])  # (N, 84)
    g2 = R.relu(h2)
    logits = R.linear(g2, p["fc3.weight"], p["fc3.bias"])  # (N, 10)
    return logits, [x, a1, r1, m1, a2, r2, m2, f, h1, g1, h2, g2]


def backward(params: Params, saved: list[np.ndarray], grad_logits: np.ndarray) -> Params:
    """Gradients of every parameter, walking the forward pass in reverse."""
    p = params
    grads: dict[str, Any] = {}  # the bias gradients are typed optional: every layer here has a bias
    x, a1, r1, m1, a2, r2, m2, f, h1, g1, h2, g2 = saved
    d, grads["fc3.weight"], grads["fc3.bias"] = R.linear_backward(grad_logits, g2, p["fc3.weight"], p["fc3.bias"])
    d = R.relu_backward(d, h2)
    d, grads["fc2.weight"], grads["fc2.bias"] = R.linear_backward(d, g1, p["fc2.weight"], p["fc2.bias"])
    d = R.relu_backward(d, h1)
    d, grads["fc1.weight"], grads["fc1.bias"] = R.linear_backward(d, f, p["fc1.weight"], p["fc1.bias"])
    d = R.flatten_backward(d, m2, 1)
    d = R.max_pool2d_backward(d, r2, 2)
    d = R.relu_backward(d, a2)
    d, grads["conv2.weight"], grads["conv2.bias"] = R.conv2d_backward(d, m1, p["conv2.weight"], p["conv2.bias"])
    d = R.max_pool2d_backward(d, r1, 2)
    d = R.relu_backward(d, a1)
    _, grads["conv1.weight"], grads["conv1.bias"] = R.conv2d_backward(d, x, p["conv1.weight"], p["conv1.bias"], padding=2)
    return grads


def train_numpy(config: Config, params: Params, data: tuple[np.ndarray, ...], batches: list[np.ndarray]) -> Params:
    x_train, _, y_train, _ = data
    params = {name: value.copy() for name, value in params.items()}
    velocity = {name: np.zeros_like(value) for name, value in params.items()}
    for index in batches:
        # 1. forward, 2. loss gradient on the logits, 3. backward through every layer
        logits, saved = forward(params, x_train[index])
        grad_logits = R.cross_entropy_backward(np.array(1.0), logits, y_train[index])
        grads = backward(params, saved, grad_logits)
        # 4. SGD with momentum, torch's formula: v = momentum*v + g; p -= lr*v
        for name in params:
            velocity[name] = config.momentum * velocity[name] + grads[name]
            params[name] -= config.lr * velocity[name]
    return params


def accuracy_numpy(params: Params, x: np.ndarray, y: np.ndarray) -> float:
    return float((forward(params, x)[0].argmax(axis=1) == y).mean())


# ----------------------------------------------------------------------------- the same network in PyTorch


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 6, 8, 8)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 16, 2, 2)
        x = torch.flatten(x, 1)  # (N, 64)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def train_torch(config: Config, params: Params, data: tuple[np.ndarray, ...], batches: list[np.ndarray]) -> LeNet:
    x_train, _, y_train, _ = data
    model = LeNet().double()
    model.load_state_dict({name: torch.tensor(value) for name, value in params.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    x_all, y_all = torch.tensor(x_train), torch.tensor(y_train)
    for index in batches:
        loss = F.cross_entropy(model(x_all[index]), y_all[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


# ----------------------------------------------------------------------------- main


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=Config.epochs)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args()
    config = Config(epochs=args.epochs, seed=args.seed)

    data = load_data(config)
    x_train, x_test, _, y_test = data
    rng = np.random.default_rng(config.seed)
    params = init_params(rng)
    # the same shuffled batches for both runs
    batches = [
        order[i : i + config.batch_size]
        for order in (rng.permutation(len(x_train)) for _ in range(config.epochs))
        for i in range(0, len(order), config.batch_size)
    ]
    print(f"digits: {len(x_train)} train, {len(x_test)} test images, 16x16 (8x8 upsampled); {config}")

    # the matrices here are small (at most 8192x150): OpenBLAS's worker threads cost more in wake-ups than they
    # save, and on a busy machine they spin against each other (measured 10x slower); torch gets one thread too
    with threadpool_limits(limits=1, user_api="blas"):
        trained, numpy_seconds = timed(lambda: train_numpy(config, params, data, batches))
    numpy_accuracy = accuracy_numpy(trained, x_test, y_test)
    print(f"numpy (cnnkit.reference): test accuracy {numpy_accuracy:.2%}, training {numpy_seconds:.2f} s")

    # one thread, as NumPy's BLAS above; two OpenMP threads spin against any other busy process (measured 5-7x slower)
    torch.set_num_threads(1)
    model, torch_seconds = timed(lambda: train_torch(config, params, data, batches))
    with torch.no_grad():
        torch_accuracy = float((model(torch.tensor(x_test)).argmax(1).numpy() == y_test).mean())
    print(f"pytorch (float64):        test accuracy {torch_accuracy:.2%}, training {torch_seconds:.2f} s")

    gap = max(float(np.abs(trained[name] - value.numpy()).max()) for name, value in model.state_dict().items())
    print(f"largest difference between the two runs' final weights: {gap:.1e}")


if __name__ == "__main__":
    main()
