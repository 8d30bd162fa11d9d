"""Two uses of an autoencoder that the slides name, measured: anomaly detection, and generating new images.

1. **Anomaly scoring.** Train cnnkit's ``conv_autoencoder`` (the zoo's) on Fashion-MNIST without one class (default:
   Bag). It learns to rebuild what it has seen; an image of the unseen class is rebuilt worse. The reconstruction
   error (mean squared error per image) is the anomaly score, and ``sklearn.metrics.roc_auc_score`` says how well
   it tells the held-out class from the others on the test set (1.0: every held-out image scores higher; 0.5:
   chance). The baseline scores each image by its distance to the mean training image.
2. **Generation.** Decode points of the code space that no image was encoded to: the straight line between the
   codes of two test images, and random codes drawn from a Gaussian fitted to the training images' codes.

Needs Fashion-MNIST (``scripts/setup.sh`` installs it as root; else see ``cnnkit.data``)::

    python examples/autoencoder_uses.py [--held-out Bag] [--train-per-class 2000] [--epochs 5] [--out FIGURE]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from cnnkit import models
from cnnkit.cli import figure_file, whole_number
from cnnkit.data import load
from cnnkit.explain.panels import pyplot, save_figure
from cnnkit.models.autoencoder import ConvAutoencoder


@dataclass(frozen=True)
class Config:
    held_out: str = "Bag"  # the class the autoencoder never sees: the "anomaly"
    train_per_class: int = 2000  # training images of each other class (the first ones)
    epochs: int = 5
    batch_size: int = 64
    lr: float = 3e-3
    latent: int = 16  # the code's length
    width: int = 16  # the first convolution's filters (the zoo's option)
    seed: int = 0


# ----------------------------------------------------------------------------- the measurements


def reconstruction_errors(model: ConvAutoencoder, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """``(N,)``: each image's mean squared reconstruction error, its anomaly score. ``images`` in [0, 1]."""
    with torch.no_grad():
        return torch.cat([((model(part) - part) ** 2).mean(dim=(1, 2, 3)) for part in images.split(batch)])


def anomaly_auc(scores: torch.Tensor | np.ndarray, is_anomaly: torch.Tensor | np.ndarray) -> float:
    """ROC AUC of ``scores`` for telling anomalies (``True``) from the rest: the chance that an anomaly outscores a normal image."""
    return float(roc_auc_score(np.asarray(is_anomaly, dtype=bool), np.asarray(scores, dtype=np.float64)))


def interpolate(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """``(steps, latent)``: the codes ``(1 - t) start + t end`` for ``t`` from 0 to 1."""
    t = torch.linspace(0, 1, steps)[:, None]
    return (1 - t) * start[None] + t * end[None]


def gaussian_codes(codes: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``(count, latent)`` codes drawn from the Gaussian with the mean and covariance of ``codes`` ``(N, latent)``."""
    mean = codes.mean(0)
    centred = codes - mean
    covariance = centred.T @ centred / (len(codes) - 1) + 1e-5 * torch.eye(codes.shape[1])
    noise = torch.randn(count, codes.shape[1], generator=generator)
    return mean + noise @ torch.linalg.cholesky(covariance).T


# ----------------------------------------------------------------------------- training


def train(model: ConvAutoencoder, images: torch.Tensor, config: Config) -> ConvAutoencoder:
    """Adam on the mean squared error between each image and its reconstruction, a few epochs."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), config.batch_size):
            batch = images[order[start:start + config.batch_size]]  # (B, 1, 28, 28) in [0, 1]
            # 1. encode and decode, 2. the reconstruction loss, 3. backward, 4. step
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def class_index(name: str, class_names: tuple[str, ...]) -> int:
    """The class called ``name`` (any case), or given by its index."""
    lowered = [n.lower() for n in class_names]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    if name.isdigit() and int(name) < len(class_names):
        return int(name)
    raise ValueError(f"`--held-out` must be one of {', '.join(class_names)} (or its index). Received: --held-out={name!r}")


# ----------------------------------------------------------------------------- the figure


def draw(model: ConvAutoencoder, pair: torch.Tensor, samples: torch.Tensor, errors: torch.Tensor, anomalous: torch.Tensor,
         auc: float, held_name: str, path: Path) -> Path:
    """Top: two test images and the decoded line between their codes. Middle: decoded random codes. Bottom: the
    reconstruction errors of the held-out class against the others."""
    plt = pyplot()
    with torch.no_grad():
        codes = model.encode(pair)  # (2, latent)
        line = model.decode(interpolate(codes[0], codes[1], steps=8))  # (8, 1, 28, 28)
        drawn = model.decode(samples)
    fig = plt.figure(figsize=(12, 7.5), layout="constrained")
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[1, 1, 1.6])
    row = top.subplots(1, 10)
    titles = ["image A", *(f"t = {t:.2g}" for t in np.linspace(0, 1, 8)), "image B"]
    for ax, picture, title in zip(row, [pair[0], *line, pair[1]], titles, strict=True):
        ax.imshow(picture[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    top.suptitle("decoding the codes (1 - t) code(A) + t code(B) on the line between two test images", fontsize=10)
    for ax, picture in zip(middle.subplots(1, 10), drawn, strict=True):
        ax.imshow(picture[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    middle.suptitle("decoding random codes from a Gaussian fitted to the training codes", fontsize=10)
    ax = bottom.subplots(1, 1)
    bins = np.linspace(0, float(errors.quantile(0.995)), 60)
    ax.hist(errors[~anomalous].numpy(), bins=bins, alpha=0.6, density=True, label="the 9 classes it trained on")
    ax.hist(errors[anomalous].numpy(), bins=bins, alpha=0.6, density=True, label=f"{held_name} (never seen)")
    ax.set(xlabel="reconstruction error (MSE per image)", ylabel="density",
           title=f"anomaly score on the test set: ROC AUC {auc:.3f}")
    ax.legend()
    return save_figure(fig, path, "out")


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", default=Config.held_out, help="the class left out of training (name or index)")
    parser.add_argument("--train-per-class", type=whole_number(1), default=Config.train_per_class)
    parser.add_argument("--epochs", type=whole_number(1), default=Config.epochs)
    parser.add_argument("--seed", type=whole_number(0), default=Config.seed)
    parser.add_argument("--out", type=figure_file("out"), default="demo-autoencoder.png", help="the figure, PNG or SVG")
    args = parser.parse_args()
    config = Config(held_out=args.held_out, train_per_class=args.train_per_class, epochs=args.epochs, seed=args.seed)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(1)  # small batches: two OpenMP threads spin against any other busy process

    splits = load("fashion-mnist")
    assert splits.test is not None  # Fashion-MNIST has its official test split
    names = splits.train.class_names
    try:
        held = class_index(config.held_out, names)
    except ValueError as error:
        parser.error(str(error))
    labels = splits.train.labels
    keep = torch.cat([torch.nonzero(labels == c)[:config.train_per_class, 0] for c in range(len(names)) if c != held])
    x_train = splits.train.images[keep].float() / 255  # (9 * per class, 1, 28, 28) in [0, 1]
    x_test, y_test = splits.test.images.float() / 255, splits.test.labels
    print(f"Fashion-MNIST: {len(x_train)} training images of 9 classes (not {names[held]}), {len(x_test)} test images; {config}")

    model = models.create("conv_autoencoder", latent=config.latent, width=config.width)
    assert isinstance(model, ConvAutoencoder)
    fit_start = time.perf_counter()
    train(model, x_train, config)
    print(f"conv_autoencoder (latent {config.latent}, width {config.width}, {sum(p.numel() for p in model.parameters()):,} "
          f"parameters): trained in {time.perf_counter() - fit_start:.1f} s, training MSE "
          f"{float(reconstruction_errors(model, x_train).mean()):.4f}")

    # 1. anomaly scoring: the held-out class against the nine others, on the test set
    errors = reconstruction_errors(model, x_test)
    anomalous = y_test == held
    auc = anomaly_auc(errors, anomalous)
    baseline = anomaly_auc(((x_test - x_train.mean(0)) ** 2).mean(dim=(1, 2, 3)), anomalous)
    print(f"\nmean reconstruction error per test class ({names[held]} held out):")
    for c, name in enumerate(names):
        print(f"  {name:12s} {float(errors[y_test == c].mean()):.4f}" + ("   <- never seen in training" if c == held else ""))
    print(f"ROC AUC, {names[held]} vs the rest, scored by reconstruction error: {auc:.3f}")
    print(f"ROC AUC of the baseline (distance to the mean training image):   {baseline:.3f}")

    # 2. generation: decode codes no image was encoded to
    with torch.no_grad():
        codes = model.encode(x_train)  # (N, latent)
    generator = torch.Generator().manual_seed(config.seed)
    samples = gaussian_codes(codes, 10, generator)
    first = [int(torch.nonzero(y_test == c)[0, 0]) for c in (names.index("Trouser") if "Trouser" in names else 1, 0)]
    pair = x_test[first]  # a trouser and a T-shirt
    written = draw(model, pair, samples, errors, anomalous, auc, names[held], Path(args.out))
    print(f"\nwrote {written}: the line between two codes decoded, 10 random codes decoded, the error histograms; "
          f"{time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
