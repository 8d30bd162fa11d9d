"""The baseline a user would write from PyTorch's tutorials: LeNet-5 on Fashion-MNIST, one epoch, then the test set.

Everything a whole process does is in it and timed by whoever runs it: importing torch, reading the four IDX
files (gzip + NumPy, as a script without torchvision does), a ``TensorDataset`` through a ``DataLoader`` (batch
64, shuffled), float32, SGD with momentum (lr 0.01, momentum 0.9: the classic tutorial choice; plain lr 1e-3
reaches far lower accuracy in one epoch), cross-entropy, then the accuracy on the 10,000 test images. Pixels are
scaled to [0, 1] and normalised by the training set's mean and std, as a careful tutorial does. It prints one
JSON line: ``{"accuracy": ..., "seconds": ...}`` (seconds since the script started, imports excluded; the caller
times the whole process)::

    python benchmarks/tutorial_lenet5.py [--data /usr/share/datasets/fashion-mnist] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped): big-endian dimensions after a 4-byte magic, then uint8 values."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def lenet5() -> nn.Module:
    """LeNet-5 for 1x28x28: conv 6@5x5, max pool 2, conv 16@5x5, max pool 2, dense 120, 84, 10 (ReLU)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    folder = Path(args.data)
    train_x = torch.from_numpy(read_idx(folder / "train-images-idx3-ubyte.gz").copy()).float().div(255)[:, None]
    train_y = torch.from_numpy(read_idx(folder / "train-labels-idx1-ubyte.gz").copy()).long()
    test_x = torch.from_numpy(read_idx(folder / "t10k-images-idx3-ubyte.gz").copy()).float().div(255)[:, None]
    test_y = torch.from_numpy(read_idx(folder / "t10k-labels-idx1-ubyte.gz").copy()).long()
    mean, std = train_x.mean(), train_x.std()
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=64, shuffle=True)
    model = lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(TensorDataset(test_x, test_y), batch_size=1000):
            correct += int((model(x).argmax(1) == y).sum())
    print(json.dumps({"accuracy": correct / len(test_y), "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
