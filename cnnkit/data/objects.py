"""Synthetic scenes of objects for localisation and detection: ``shapes-loc`` and ``shapes-det``.

``shapes-loc``: one shape per image, with its class, box and mask (deck 001's
"classification + localisation"). ``shapes-det``: one to six shapes per image of
the six classes, of varied size (8% to 30% of the shorter side), colour, aspect
(stretched up to 1.6:1, except circles and squares) and rotation, overlapping and occluding one another
(later ones on top), on a textured background (random gratings). Every object
has a box and an instance mask of its *visible* pixels; as in COCO, the box is
the visible part's extent, and an object hidden below 35% of its area is left
out (it is not a fair target).

Everything is a function of the seed, drawn with NumPy over many images at once
(:mod:`cnnkit.data.shapes` has the shape tests).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cnnkit.data.dataset import TEST_STREAM, DataSplits, ImageDataset, split_off
from cnnkit.data.shapes import SHAPE_NAMES, _boxes, _colours, _inside

DEFAULT_LOC_COUNT = 6_000
DEFAULT_DET_COUNT = 12_500
DEFAULT_SIZE = (64, 64)
MIN_SIZE = 32
MAX_OBJECTS = 6
MIN_VISIBLE = 0.35  # an object occluded below this fraction of its area is left out
MIN_PIXELS = 12  # and so is one of fewer visible pixels
MIN_RADIUS = 5.0  # pixels: the smallest shape drawn, so that small images still have visible objects
TEST_FRACTION = 0.2
_STREAM = 20


def _masks(kinds: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, angle: np.ndarray,
           stretch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One shape per image, stretched along its own first axis: all arguments ``(n,)`` -> ``(n, H, W) bool``."""
    h, w = size
    ys = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None]
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :]
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    r = radius[:, None, None]
    u = ((dx * cos + dy * sin) / (r * stretch[:, None, None])).astype(np.float32)  # (n, H, W)
    v = ((dy * cos - dx * sin) / r).astype(np.float32)
    out = np.zeros((kinds.size, h, w), dtype=bool)
    for kind in np.unique(kinds):
        rows = kinds == kind
        out[rows] = _inside(int(kind), u[rows], v[rows], np.full((int(rows.sum()), 1, 1), 0.55, np.float32))
    return out


def _texture(rng: np.random.Generator, n: int, size: tuple[int, int]) -> np.ndarray:
    """``(n, 1, H, W)`` background texture in [-1, 1]: the mean of three random gratings per image."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = np.zeros((n, 1, h, w), dtype=np.float32)
    for _ in range(3):
        frequency = rng.uniform(0.05, 0.35, n).astype(np.float32)[:, None, None]
        direction = rng.uniform(0.0, math.pi, n).astype(np.float32)[:, None, None]
        phase = rng.uniform(0.0, 2 * math.pi, n).astype(np.float32)[:, None, None]
        texture[:, 0] += np.sin(frequency * (xs * np.cos(direction) + ys * np.sin(direction)) + phase) / 3
    return texture


def _hues(rng: np.random.Generator, n: int, slots: int, dark_background: np.ndarray) -> np.ndarray:
    """``(n, slots, 3)`` object colours on [0, 1]: hues spaced a sixth of the circle apart (shuffled, so that
    objects of one image differ from one another), bright on dark backgrounds and dark on bright ones."""
    from matplotlib.colors import hsv_to_rgb

    start = rng.uniform(0.0, 1.0, (n, 1))
    order = np.argsort(rng.random((n, slots)), axis=1)  # a random order of the six hues
    hue = np.mod(start + order / slots + rng.uniform(-0.04, 0.04, (n, slots)), 1.0)
    saturation = rng.uniform(0.6, 1.0, (n, slots))
    value = np.where(dark_background[:, None], rng.uniform(0.8, 1.0, (n, slots)), rng.uniform(0.2, 0.4, (n, slots)))
    return hsv_to_rgb(np.stack([hue, saturation, value], -1)).astype(np.float32)


def draw_objects(num_samples: int, size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0, min_objects: int = 1,
                 max_objects: int = MAX_OBJECTS, name: str = "shapes-det") -> ImageDataset:
    """``num_samples`` scenes of ``min_objects`` to ``max_objects`` shapes: ``(N, 3, H, W) uint8`` images with
    ``object_boxes`` ``(N, M, 4)``, ``object_classes`` ``(N, M)`` (``-1``: no object) and ``object_masks``
    ``(N, M, H, W)``, ``M = max_objects``, objects in drawing order (later ones on top). With one object per
    image, ``boxes`` and ``masks`` hold it too."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2 * len(SHAPE_NAMES):
        raise ValueError(f"{name}: `num_samples` must be an int >= {2 * len(SHAPE_NAMES)}. Received: {num_samples!r}")
    if min(size) < MIN_SIZE:
        raise ValueError(f"{name}: `image_size` must be at least {MIN_SIZE} pixels a side. Received: {size}")
    if not 1 <= min_objects <= max_objects <= MAX_OBJECTS:
        raise ValueError(f"{name}: objects per image must satisfy 1 <= min <= max <= {MAX_OBJECTS}. Received: "
                         f"{min_objects}..{max_objects}")
    h, w = size
    n, m = num_samples, max_objects
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM, min_objects, max_objects]))
    count = rng.integers(min_objects, max_objects + 1, n)
    kinds = rng.integers(0, len(SHAPE_NAMES), (n, m))
    low, high = (0.08, 0.3) if max_objects > 1 else (0.15, 0.4)
    radius = np.maximum(rng.uniform(low, high, (n, m)) * min(h, w), MIN_RADIUS).astype(np.float32)
    stretch = np.exp(rng.uniform(-math.log(1.6), math.log(1.6), (n, m))).astype(np.float32)
    # a stretched circle or square would be an ellipse or a rectangle, and an ellipse squeezed along its long axis
    # could become a circle: those keep their class's shape
    stretch[np.isin(kinds, [SHAPE_NAMES.index("circle"), SHAPE_NAMES.index("square")])] = 1.0
    ellipse = kinds == SHAPE_NAMES.index("ellipse")
    stretch[ellipse] = np.maximum(stretch[ellipse], 1.0 / stretch[ellipse])
    reach = radius * np.maximum(stretch, 1.0)  # the shape's extent from its centre, at most
    margin = np.minimum(reach, min(h, w) / 2 - 1)
    cx = rng.uniform(margin, w - margin).astype(np.float32)
    cy = rng.uniform(margin, h - margin).astype(np.float32)
    angle = rng.uniform(0.0, 2 * math.pi, (n, m)).astype(np.float32)
    dark = rng.random(n) < 0.5
    background = _colours(rng, n, dark, slots=1)[0].astype(np.float32)
    foreground = _hues(rng, n, m, dark)
    contrast = rng.uniform(0.05, 0.15, n).astype(np.float32)[:, None, None, None]
    noise_std = rng.uniform(0.01, 0.05, n).astype(np.float32)[:, None, None, None]

    full = np.zeros((n, m, h, w), dtype=bool)
    for slot in range(m):
        full[:, slot] = _masks(kinds[:, slot], cx[:, slot], cy[:, slot], radius[:, slot], angle[:, slot],
                               stretch[:, slot], size) & (count > slot)[:, None, None]
    visible = full.copy()
    for slot in range(m - 1):  # what later objects cover is hidden
        visible[:, slot] &= ~np.any(full[:, slot + 1:], axis=1)
    area, shown = full.sum((2, 3)), visible.sum((2, 3))
    keep = (shown >= MIN_PIXELS) & (shown >= MIN_VISIBLE * np.maximum(area, 1))
    order = np.argsort(~keep, axis=1, kind="stable")  # kept objects first, in drawing order
    keep = np.take_along_axis(keep, order, 1)
    visible = np.take_along_axis(visible, order[:, :, None, None], 1) & keep[:, :, None, None]
    classes = np.where(keep, np.take_along_axis(kinds, order, 1), -1).astype(np.int64)
    boxes = np.zeros((n, m, 4), dtype=np.float32)
    boxes[keep] = _boxes(visible[keep])

    colour = background[:, :, None, None] * (1.0 + contrast * _texture(rng, n, size))  # (n, 3, H, W)
    for slot in range(m):  # in drawing order: the later on top
        drawn = full[:, slot][:, None]
        colour = np.where(drawn, foreground[:, slot, :, None, None], colour)
    noise = rng.standard_normal(colour.shape, dtype=np.float32)
    noise *= noise_std
    colour += noise
    np.clip(colour, 0.0, 1.0, out=colour)
    colour *= 255.0
    images = np.rint(colour, out=colour).astype(np.uint8)
    largest = np.take_along_axis(classes, visible.sum((2, 3)).argmax(1)[:, None], 1)[:, 0]
    top = np.take_along_axis(kinds, (count - 1)[:, None], 1)[:, 0]  # the last drawn, should none be kept
    largest = np.where(largest >= 0, largest, top)
    single = max_objects == 1
    return ImageDataset(
        images=torch.from_numpy(images), labels=torch.from_numpy(largest), class_names=SHAPE_NAMES, name=name,
        source=f"synthetic scenes of {min_objects}-{max_objects} shapes (seed={seed})",
        boxes=torch.from_numpy(boxes[:, 0].copy()) if single else None,
        masks=torch.from_numpy(visible[:, 0].copy()) if single else None,
        object_boxes=torch.from_numpy(boxes), object_classes=torch.from_numpy(classes),
        object_masks=torch.from_numpy(visible))


def load_objects(detection: bool, num_samples: int | None = None, size: tuple[int, int] | None = None,
                 seed: int = 0) -> DataSplits:
    """``shapes-det`` (``detection``) or ``shapes-loc`` drawn from ``seed``, split 80/20 (stratified by each
    image's largest object) into train and test."""
    name = "shapes-det" if detection else "shapes-loc"
    n = num_samples if num_samples is not None else DEFAULT_DET_COUNT if detection else DEFAULT_LOC_COUNT
    full = draw_objects(n, size or DEFAULT_SIZE, seed, 1, MAX_OBJECTS if detection else 1, name)
    train, test = split_off(full, TEST_FRACTION, seed, TEST_STREAM, (f"{name}/train", f"{name}/test"))
    return DataSplits(train=train, test=test, val=None, test_official=False, seed=seed)
