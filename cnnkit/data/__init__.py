"""Datasets held in memory as uint8 tensors, batch transforms, and a fast batch iterator.

>>> import torch
>>> from cnnkit.data import BatchTransform, batches, channel_stats, load
>>> splits = load("digits", val_split=0.1, seed=0)
>>> mean, std = channel_stats(splits.train.images)
>>> transform = BatchTransform(mean=mean, std=std, crop_padding=1)
>>> g = torch.Generator().manual_seed(0)
>>> for images, labels in batches(splits.train, 64, shuffle=True, generator=g):
...     x = transform(images, g)  # (64, 1, 8, 8) float32, normalised and augmented
"""

from cnnkit.data.batches import Batches, batches
from cnnkit.data.catalog import DATASETS, load
from cnnkit.data.dataset import DataSplits, ImageDataset, dominant_classes, stratified_split
from cnnkit.data.idx import read_idx, read_idx_images, read_idx_labels
from cnnkit.data.noise import Noise
from cnnkit.data.pairs import save_pairs
from cnnkit.data.shapes import SHAPE_NAMES, draw_segmentation, draw_shapes
from cnnkit.data.transforms import (
    BatchTransform,
    channel_stats,
    gaussian_noise,
    hflip,
    normalize,
    random_crop,
    random_erasing,
    to_float,
)

__all__ = [
    "DATASETS",
    "SHAPE_NAMES",
    "BatchTransform",
    "Batches",
    "DataSplits",
    "ImageDataset",
    "Noise",
    "batches",
    "channel_stats",
    "dominant_classes",
    "draw_segmentation",
    "draw_shapes",
    "gaussian_noise",
    "hflip",
    "load",
    "normalize",
    "random_crop",
    "random_erasing",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "save_pairs",
    "stratified_split",
    "to_float",
]
