"""Classify image files with a trained run: its network, class names and preprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnkit.models.predict import ImagePrediction, Preprocessing, classify
from cnnkit.training import network


def predict_run(run: str | Path, files: Sequence[str | Path], top: int = 5) -> list[ImagePrediction]:
    """Top-``top`` classes of each image file under the run's network.

    Images are read as the run's data was (grey for one channel, RGB for three),
    resized to its input size and normalised with its training statistics.
    Unreadable files get an ``ImagePrediction`` with ``error`` set; the others are still classified.
    """
    model, meta = network.load_trained(run)
    transform = meta["transform"]
    channels = int(meta["input_shape"][0])
    mean = tuple(transform["mean"]) if transform.get("mean") else (0.0,) * channels
    std = tuple(transform["std"]) if transform.get("std") else (1.0,) * channels
    prep = Preprocessing(tuple(meta["input_shape"]), mean, std, "bilinear",
                         tuple(meta["class_names"]))
    return classify(model, prep, files, min(top, len(prep.class_names)))
