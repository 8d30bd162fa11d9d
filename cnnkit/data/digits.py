"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), with a stratified test split.

The images hold values 0..16; they are scaled to ``uint8`` 0..255
(``round(v * 255 / 16)``). The dataset has no published test split, so
cnnkit holds out 20% of each class, the same for the same seed.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnkit.data.dataset import TEST_STREAM, DataSplits, ImageDataset, split_off

TEST_FRACTION = 0.2


def load_digits(seed: int = 0) -> DataSplits:
    """Digits as train (about 80%) and test (about 20%, stratified by ``seed``), ``(1, 8, 8) uint8`` images."""
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise ValueError(
            "the digits dataset comes with scikit-learn, which is not installed: run `pip install 'cnnkit[data]'` "
            f"(or `pip install scikit-learn`). Received: import sklearn.datasets failed ({error})"
        ) from error
    bunch = sklearn_load_digits()
    pixels = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8)
    full = ImageDataset(
        images=torch.from_numpy(pixels).unsqueeze(1),  # (N, 1, 8, 8)
        labels=torch.from_numpy(np.asarray(bunch.target, dtype=np.int64)),
        class_names=tuple(str(d) for d in range(10)),
        name="digits",
        source="scikit-learn load_digits",
    )
    train, test = split_off(full, TEST_FRACTION, seed, TEST_STREAM, ("digits/train", "digits/test"))
    return DataSplits(train=train, test=test, val=None, test_official=False, seed=seed)
