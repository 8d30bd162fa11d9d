"""Synthetic shapes, drawn by cnnkit itself: a classification set with boxes and masks, and a segmentation set.

``shapes``: one shape per image (circle, ellipse, square, triangle, cross or
star) of random size, position, rotation and colour on a noisy background;
besides the label, each image comes with the shape's bounding box and binary
mask, for localisation and segmentation exercises.

``shapes-seg``: one to three smaller shapes per image, possibly overlapping
(the later one on top), with a class map per pixel (``0`` = background,
``k + 1`` = shape ``k``) for U-Net style segmentation.

Everything is a function of the seed: the same seed gives the same bytes.
Drawing is vectorised with NumPy over thousands of images at once: each shape
is a test on the pixel centres' coordinates in the shape's own rotated frame,
scaled so that the shape fits in the unit circle.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cnnkit.data.dataset import TEST_STREAM, DataSplits, ImageDataset, dominant_classes, split_off

SHAPE_NAMES = ("circle", "ellipse", "square", "triangle", "cross", "star")
DEFAULT_COUNT = 10_000  # images drawn for "shapes" (80% train, 20% test)
DEFAULT_SEG_COUNT = 4_000  # images drawn for "shapes-seg"
DEFAULT_SIZE = (32, 32)
MIN_SIZE = 16  # below this the thinnest shapes can miss every pixel centre
TEST_FRACTION = 0.2
_CHUNK = 1024  # images drawn at once; fixed, because the noise stream depends on it
_STAR_INNER = 0.45  # radius of the star's inner corners
_DRAW_STREAM = 10


def _inside(kind: int, u: np.ndarray, v: np.ndarray, aspect: np.ndarray) -> np.ndarray:
    """Whether each point ``(u, v)`` (in the shape's frame, unit = its radius) is inside shape ``kind``.

    ``u``, ``v``: ``(n, H, W) float32``; ``aspect``: ``(n, 1, 1)`` minor/major axis of ellipses -> ``(n, H, W) bool``.
    """
    name = SHAPE_NAMES[kind]
    if name == "circle":
        return u * u + v * v <= 1.0
    if name == "ellipse":
        return u * u + (v / aspect) ** 2 <= 1.0
    if name == "square":  # half-side 0.7: corners at radius 0.99
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7
    if name == "triangle":  # equilateral, circumradius 1, inradius 0.5: inside the three edges' half-planes
        inside = np.ones(u.shape, dtype=bool)
        for angle in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6):
            inside &= u * math.cos(angle) + v * math.sin(angle) <= 0.5
        return inside
    if name == "cross":  # two bars 1.9 x 0.6: corners at radius 0.996
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.95) & (av <= 0.3)) | ((au <= 0.3) & (av <= 0.95))
    # star: fold the angle into one half-spike, psi = 0 at an inner corner, pi/5 at a tip, and test against
    # the straight edge from the inner corner (radius _STAR_INNER) to the tip (radius 1)
    half = math.pi / 5
    psi = np.abs(np.mod(np.arctan2(v, u), 2 * half) - half)
    rho = np.hypot(u, v)
    edge = np.cos(psi) * math.sin(half) - np.sin(psi) * (math.cos(half) - _STAR_INNER)
    return rho * edge <= _STAR_INNER * math.sin(half)


def _shape_masks(kinds: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, angle: np.ndarray,
                 aspect: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Masks of one shape per image: all arguments ``(n,)`` (pixels, radians) -> ``(n, H, W) bool``."""
    h, w = size
    ys = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None]  # pixel centres
    xs = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :]
    dx = xs - cx[:, None, None].astype(np.float32)
    dy = ys - cy[:, None, None].astype(np.float32)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    r = radius[:, None, None]
    u = ((dx * cos + dy * sin) / r).astype(np.float32)  # (n, H, W)
    v = ((dy * cos - dx * sin) / r).astype(np.float32)
    masks = np.zeros((kinds.size, h, w), dtype=bool)
    for kind in np.unique(kinds):
        rows = kinds == kind
        masks[rows] = _inside(int(kind), u[rows], v[rows], aspect[rows, None, None])
    return masks


def _colours(rng: np.random.Generator, n: int, dark_background: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Background ``(n, 3)`` and foreground ``(n, slots, 3)`` colours in [0, 1] that differ by >= 0.3 per channel."""
    low, high = rng.uniform(0.0, 0.35, (n, 3)), rng.uniform(0.65, 1.0, (n, 3))
    background = np.where(dark_background[:, None], low, high)
    fg_low, fg_high = rng.uniform(0.0, 0.35, (n, slots, 3)), rng.uniform(0.65, 1.0, (n, slots, 3))
    foreground = np.where(dark_background[:, None, None], fg_high, fg_low)
    return background, foreground


def _paint(paint: np.ndarray, background: np.ndarray, foreground: np.ndarray, noise_std: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """``paint``: ``(n, H, W)`` slot index, -1 = background -> ``(n, 3, H, W) uint8`` with Gaussian noise."""
    n, h, w = paint.shape
    pixels = rng.standard_normal((n, 3, h, w), dtype=np.float32)
    pixels *= noise_std[:, None, None, None]
    colour = background[:, :, None, None].astype(np.float32)  # (n, 3, 1, 1), broadcast below
    for slot in range(foreground.shape[1]):
        colour = np.where((paint == slot)[:, None], foreground[:, slot, :, None, None].astype(np.float32), colour)
    pixels += colour
    np.clip(pixels, 0.0, 1.0, out=pixels)
    pixels *= 255.0
    return np.rint(pixels, out=pixels).astype(np.uint8)


def _boxes(masks: np.ndarray) -> np.ndarray:
    """``(n, H, W) bool`` non-empty masks -> ``(n, 4) float32`` tight boxes ``(x0, y0, x1, y1)``, ends exclusive."""
    rows = np.any(masks, axis=2)  # (n, H)
    cols = np.any(masks, axis=1)  # (n, W)
    y0, x0 = rows.argmax(axis=1), cols.argmax(axis=1)
    y1 = rows.shape[1] - rows[:, ::-1].argmax(axis=1)
    x1 = cols.shape[1] - cols[:, ::-1].argmax(axis=1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)


def _check_args(num_samples: int, size: tuple[int, int]) -> None:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < len(SHAPE_NAMES) * 2:
        raise ValueError(
            f"shapes: `num_samples` must be an int >= {len(SHAPE_NAMES) * 2} (two per class, for the test split). "
            f"Received: num_samples={num_samples!r}"
        )
    if min(size) < MIN_SIZE:
        raise ValueError(f"shapes: `image_size` must be at least {MIN_SIZE} pixels a side. Received: image_size={size}")


def draw_shapes(num_samples: int, size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0) -> ImageDataset:
    """``num_samples`` images of one shape each: ``(N, 3, H, W) uint8`` with labels, boxes and masks.

    Classes are balanced (``N / 6`` each, in random order); the radius is 20% to
    40% of the shorter side and the whole shape lies inside the image.
    """
    _check_args(num_samples, size)
    h, w = size
    rng = np.random.default_rng(np.random.SeedSequence([seed, _DRAW_STREAM]))
    labels = rng.permutation(np.arange(num_samples) % len(SHAPE_NAMES))
    radius = rng.uniform(0.2, 0.4, num_samples) * min(h, w)
    cx, cy = rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)
    angle = rng.uniform(0.0, 2 * math.pi, num_samples)
    aspect = rng.uniform(0.45, 0.6, num_samples)
    background, foreground = _colours(rng, num_samples, rng.random(num_samples) < 0.5, slots=1)
    noise_std = rng.uniform(0.02, 0.08, num_samples).astype(np.float32)

    images = np.empty((num_samples, 3, h, w), dtype=np.uint8)
    masks = np.empty((num_samples, h, w), dtype=bool)
    for start in range(0, num_samples, _CHUNK):
        part = slice(start, start + _CHUNK)
        masks[part] = _shape_masks(labels[part], cx[part], cy[part], radius[part], angle[part], aspect[part], size)
        paint = np.where(masks[part], 0, -1)
        images[part] = _paint(paint, background[part], foreground[part], noise_std[part], rng)
    return ImageDataset(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=SHAPE_NAMES,
        name="shapes",
        source=f"synthetic shapes (seed={seed})",
        boxes=torch.from_numpy(_boxes(masks)),
        masks=torch.from_numpy(masks),
    )


def draw_segmentation(num_samples: int, size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0, max_shapes: int = 3) -> ImageDataset:
    """``num_samples`` images of 1..``max_shapes`` shapes with a class map per pixel.

    ``images``: ``(N, 3, H, W) uint8``; ``segmentation``: ``(N, H, W) uint8``,
    ``0`` = background and ``k + 1`` = ``SHAPE_NAMES[k]``; ``labels``: the class
    covering the most pixels. ``class_names`` is ``("background", *SHAPE_NAMES)``.
    """
    _check_args(num_samples, size)
    h, w = size
    rng = np.random.default_rng(np.random.SeedSequence([seed, _DRAW_STREAM + 1]))
    count = rng.integers(1, max_shapes + 1, num_samples)
    kinds = rng.integers(0, len(SHAPE_NAMES), (num_samples, max_shapes))
    radius = rng.uniform(0.12, 0.25, (num_samples, max_shapes)) * min(h, w)
    cx, cy = rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)
    angle = rng.uniform(0.0, 2 * math.pi, (num_samples, max_shapes))
    aspect = rng.uniform(0.45, 0.6, (num_samples, max_shapes))
    background, foreground = _colours(rng, num_samples, rng.random(num_samples) < 0.5, slots=max_shapes)
    noise_std = rng.uniform(0.02, 0.08, num_samples).astype(np.float32)

    images = np.empty((num_samples, 3, h, w), dtype=np.uint8)
    segmentation = np.zeros((num_samples, h, w), dtype=np.uint8)
    for start in range(0, num_samples, _CHUNK):
        part = slice(start, start + _CHUNK)
        paint = np.full(segmentation[part].shape, -1, dtype=np.int64)
        for slot in range(max_shapes):  # later slots are painted over earlier ones
            mask = _shape_masks(kinds[part, slot], cx[part, slot], cy[part, slot], radius[part, slot],
                                angle[part, slot], aspect[part, slot], size)
            mask &= (count[part] > slot)[:, None, None]
            paint[mask] = slot
            seg_part = segmentation[part]  # a view: writing into it writes into segmentation
            seg_part[mask] = np.broadcast_to(kinds[part, slot, None, None] + 1, mask.shape)[mask]
        images[part] = _paint(paint, background[part], foreground[part], noise_std[part], rng)
    seg = torch.from_numpy(segmentation)
    return ImageDataset(
        images=torch.from_numpy(images),
        labels=dominant_classes(seg, len(SHAPE_NAMES) + 1),  # every image has a shape, so never the background
        class_names=("background", *SHAPE_NAMES),
        name="shapes-seg",
        source=f"synthetic shapes (seed={seed})",
        segmentation=seg,
    )


def load_shapes(segmentation: bool = False, num_samples: int | None = None, size: tuple[int, int] | None = None,
                seed: int = 0) -> DataSplits:
    """``shapes`` (or ``shapes-seg``) drawn from ``seed`` and split 80/20, stratified, into train and test."""
    default = DEFAULT_SEG_COUNT if segmentation else DEFAULT_COUNT
    n = default if num_samples is None else num_samples
    full = (draw_segmentation if segmentation else draw_shapes)(n, size or DEFAULT_SIZE, seed)
    train, test = split_off(full, TEST_FRACTION, seed, TEST_STREAM, (f"{full.name}/train", f"{full.name}/test"))
    return DataSplits(train=train, test=test, val=None, test_official=False, seed=seed)
