"""A user's own data from Python: tensors, NumPy arrays or a ``torch.utils.data.Dataset``, as an :class:`ImageDataset`.

``cnnkit.train(model=..., data=(x, y))`` comes here. What is accepted:

- ``x``: images ``(N, C, H, W)`` or ``(N, H, W, C)`` with ``C`` 1 or 3, or ``(N, H, W)`` grey; uint8 pixels
  0..255, or floats in [0, 1] (stored as uint8, ``round(255 x)``: cnnkit normalises by the training set's mean and
  std itself, so standardised inputs are refused rather than clipped).
- ``y``: ``(N,)`` class indices or class names (text), or ``(N, H, W)`` a class per pixel (``task="segment"``);
  left out for the tasks that learn the image itself (``reconstruct``, ``denoise``).
- a ``Dataset`` whose items are ``(image, target)`` (tensors, arrays or PIL images): read once into memory.

>>> import numpy as np
>>> x = np.zeros((4, 8, 8, 3), dtype=np.uint8); y = np.array([0, 1, 0, 1])
>>> ds = to_dataset((x, y), name="mine")
>>> ds.images.shape, ds.class_names
(torch.Size([4, 3, 8, 8]), ('0', '1'))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cnnkit.data.dataset import ImageDataset, dominant_classes

_CHANNELS = (1, 3)


def is_given(data: object) -> bool:
    """Whether ``data`` is a user's own data (arrays, tensors, a Dataset) rather than a dataset name."""
    return not isinstance(data, str)


def _array(value: Any, what: str) -> np.ndarray:
    """A tensor, array, PIL image or nested list as a NumPy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as error:  # NumPy raises several types for ragged or odd objects
        raise TypeError(f"{what}: cannot read it as an array ({type(error).__name__}: {error}). Received: "
                        f"{type(value).__name__}") from None


def to_images(value: Any, what: str = "x") -> torch.Tensor:
    """Images as ``(N, C, H, W) uint8``: see the module's docstring for what is accepted."""
    array = _array(value, what)
    if array.ndim == 3:
        array = array[:, None]  # (N, H, W) -> (N, 1, H, W)
    if array.ndim != 4:
        raise ValueError(f"{what} must hold images (N, C, H, W), (N, H, W, C) or (N, H, W). Received: shape="
                         f"{tuple(array.shape)}")
    if array.shape[1] not in _CHANNELS:
        if array.shape[3] not in _CHANNELS:
            raise ValueError(f"{what}: images need 1 or 3 channels, first (N, C, H, W) or last (N, H, W, C). "
                             f"Received: shape={tuple(array.shape)}")
        array = array.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if array.shape[0] == 0:
        raise ValueError(f"{what} holds no images. Received: shape={tuple(array.shape)}")
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{what}: pixels must be uint8 (0..255) or floats in [0, 1]. Received: dtype={array.dtype}")
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"{what}: integer pixels must be 0..255. Received: values from {low} to {high}")
        return torch.from_numpy(array.astype(np.uint8))
    smallest, largest = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(smallest) and np.isfinite(largest)) or smallest < 0.0 or largest > 1.0:
        raise ValueError(f"{what}: float pixels must be in [0, 1] (cnnkit normalises by the training set's mean and "
                         f"std itself: give the images before standardising). Received: values from {smallest:g} to "
                         f"{largest:g}")
    return torch.from_numpy(np.rint(array * 255.0).astype(np.uint8))


def _labels(value: Any, n: int, class_names: Sequence[str] | None, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices ``(N,)`` or ``(N, H, W)`` and the class names (given, the sorted texts, or ``"0".."K-1"``)."""
    array = _array(value, what)
    if array.shape[:1] != (n,):
        raise ValueError(f"{what} must have one entry per image ({n}). Received: shape={tuple(array.shape)}")
    if array.dtype.kind in "US":  # class names as text: indexed in sorted order, or in class_names' order
        names = tuple(class_names) if class_names is not None else tuple(sorted({str(v) for v in array.ravel()}))
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({str(v) for v in array.ravel()} - set(index))
        if unknown:
            raise ValueError(f"{what}: labels {unknown[:3]} are not in class_names {list(names)[:6]}")
        return np.vectorize(index.__getitem__, otypes=[np.int64])(array.astype(str)), names
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.rint(array)):
            array = array.astype(np.int64)
        else:
            raise TypeError(f"{what}: labels must be class indices (integers) or class names (text). Received: "
                            f"dtype={array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0:
        raise ValueError(f"{what}: class indices must be >= 0. Received: {low}")
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(high + 1))
    if high >= len(names):
        raise ValueError(f"{what}: class index {high} has no name in class_names ({len(names)} names)")
    return array.astype(np.int64), names


def _from_items(dataset: Any, what: str) -> tuple[Any, Any]:
    """A map-style Dataset's ``(image, target)`` items, read once and stacked."""
    try:
        size = len(dataset)
    except TypeError:
        raise TypeError(f"{what}: a Dataset needs a length (a map-style torch.utils.data.Dataset). Received: "
                        f"{type(dataset).__name__}") from None
    images, targets = [], []
    for i in range(size):
        item = dataset[i]
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"{what}[{i}] must be an (image, target) pair. Received: {type(item).__name__}")
        images.append(_array(item[0], f"{what}[{i}] image"))
        targets.append(_array(item[1], f"{what}[{i}] target"))
    if not images:
        raise ValueError(f"{what} holds no images")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"{what}: the images must all have one shape (resize them first). Received: "
                         f"{sorted(shapes)[:3]}")
    return np.stack(images), np.stack(targets)


def to_dataset(data: Any, *, name: str = "memory", class_names: Sequence[str] | None = None,
               per_pixel: bool = False, needs_targets: bool = True) -> ImageDataset:
    """``data`` (``(x, y)``, ``x`` alone for tasks that need no targets, or a Dataset) as an :class:`ImageDataset`.

    ``per_pixel``: ``y`` is a class per pixel ``(N, H, W)`` (segmentation; each image's label is then its
    dominant class); otherwise ``(N,)``.
    """
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = data
    elif hasattr(data, "__getitem__") and not isinstance(data, np.ndarray | torch.Tensor | tuple | list):
        x, y = _from_items(data, name)
    elif not needs_targets:
        x, y = data, None
    else:
        raise TypeError(f"data must be (x, y) images and labels, or a Dataset of (image, target) pairs. Received: "
                        f"{type(data).__name__}")
    images = to_images(x, f"{name} images")
    n, _, h, w = images.shape
    if y is None:
        return ImageDataset(images, torch.zeros(n, dtype=torch.int64), tuple(class_names or ("image",)), name,
                            source="arrays given from Python")
    labels, names = _labels(y, n, class_names, f"{name} labels")
    if per_pixel:
        if labels.shape != (n, h, w):
            raise ValueError(f"{name} labels: segmentation needs a class per pixel ({n}, {h}, {w}). Received: "
                             f"shape={labels.shape}")
        if len(names) > 256:
            raise ValueError(f"{name} labels: at most 256 classes per pixel. Received: {len(names)}")
        segmentation = torch.from_numpy(labels.astype(np.uint8))
        return ImageDataset(images, dominant_classes(segmentation, len(names)), names, name,
                            source="arrays given from Python", segmentation=segmentation)
    if labels.shape != (n,):
        hint = " (a class per pixel: train with task='segment')" if labels.shape == (n, h, w) else ""
        raise ValueError(f"{name} labels must be one class per image ({n},){hint}. Received: shape={labels.shape}")
    return ImageDataset(images, torch.from_numpy(labels), names, name, source="arrays given from Python")
