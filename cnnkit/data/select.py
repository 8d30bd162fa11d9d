"""Smaller problems cut from a dataset: some of its classes (relabelled), or N training images per class.

Transfer learning is studied on exactly such cuts: a network trained on
Fashion-MNIST's classes 0-4 reused for classes 5-9, or any backbone given only
100 labelled images of each class. Both cuts are deterministic: the classes
by the list given, the per-class subset by the seed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from cnnkit.data.dataset import ImageDataset

# stream of the per-class subset draw, independent of the test (1) and val (2) splits of the same seed
SUBSET_STREAM = 3
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_classes(spec: Sequence[str | int], class_names: Sequence[str]) -> list[int]:
    """Class indices from names, indices or ranges (``["5-9"]``, ``[0, 2]``, ``["Bag", "Sandal"]``), in order given.

    A duplicate, an unknown name or an index out of range is a ``ValueError``
    that lists the dataset's classes.
    """
    indices: list[int] = []
    known = ", ".join(f"{i} {name}" for i, name in enumerate(class_names))
    for item in spec:
        text = str(item).strip()
        match = _RANGE.match(text)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise ValueError(f"--classes: the range {text!r} runs backwards; write {high}-{low}. Received: {text!r}")
            chosen = list(range(low, high + 1))
        elif text.isdigit():
            chosen = [int(text)]
        elif text in class_names:
            chosen = [list(class_names).index(text)]
        else:
            raise ValueError(f"--classes: no class {text!r} in this dataset; its classes are {known}. Received: {text!r}")
        for index in chosen:
            if index >= len(class_names):
                raise ValueError(f"--classes: class {index} is out of range; the dataset has {len(class_names)} "
                                 f"classes ({known}). Received: {text!r}")
            if index in indices:
                raise ValueError(f"--classes: class {index} ({class_names[index]}) is listed twice. Received: {list(spec)}")
            indices.append(index)
    if len(indices) < 2:
        raise ValueError(f"--classes: a classifier needs at least two classes. Received: {list(spec)}")
    return indices


def select_classes(ds: ImageDataset, indices: Sequence[int]) -> ImageDataset:
    """The samples of the classes ``indices``, relabelled ``0 .. len(indices) - 1`` in that order.

    ``images (N, C, H, W)`` -> ``(M, C, H, W)`` with ``M`` the samples of those
    classes, in their original order; ``class_names`` follow the new labels.
    """
    mapping = torch.full((ds.num_classes,), -1, dtype=torch.int64)
    mapping[torch.as_tensor(list(indices), dtype=torch.int64)] = torch.arange(len(indices))
    new_labels = mapping[ds.labels.cpu()]
    keep = torch.nonzero(new_labels >= 0).flatten()
    subset = ds.subset(keep)
    return replace(subset, labels=new_labels[keep].to(ds.labels.device),
                   class_names=tuple(ds.class_names[i] for i in indices))


def per_class_subset(ds: ImageDataset, per_class: int, seed: int) -> ImageDataset:
    """``per_class`` samples of every class, drawn by ``seed``; the same seed gives the same images.

    The draw is a seeded permutation of each class's samples, of which the
    first ``per_class`` are kept (so 20 per class are the first 20 of the
    draw that gives 100 per class), returned in the dataset's original order.
    A segmentation image has a class at every pixel; it counts under its
    label, the class of its largest object (the class covering the most pixels
    besides the background, :func:`~cnnkit.data.dataset.dominant_classes`), and
    a class that is no image's largest object (the background) draws none.
    A class with fewer samples is a ``ValueError`` naming it.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"--train-per-class must be a positive int. Received: {per_class!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, SUBSET_STREAM]))
    labels = ds.labels.cpu().numpy()
    segmentation = ds.kind == "segmentation"
    chosen: list[np.ndarray] = []
    for c, name in enumerate(ds.class_names):
        members = np.flatnonzero(labels == c)
        if segmentation and members.size == 0:
            continue
        if members.size < per_class:
            if segmentation:
                raise ValueError(
                    f"dataset {ds.name!r} is a segmentation dataset, so --train-per-class counts each image under its "
                    f"largest object (the class covering the most pixels besides the background): class {c} ({name}) "
                    f"is the largest object of {members.size} training images, fewer than --train-per-class "
                    f"{per_class}; ask for at most {members.size}")
            raise ValueError(f"dataset {ds.name!r}: class {c} ({name}) has {members.size} training images, fewer than "
                             f"--train-per-class {per_class}; ask for at most {members.size}")
        chosen.append(rng.permutation(members)[:per_class])
    return ds.subset(torch.from_numpy(np.sort(np.concatenate(chosen)).astype(np.int64)))
