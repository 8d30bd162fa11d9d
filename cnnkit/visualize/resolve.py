"""RUN_OR_MODEL: the network a visualisation looks at, and how its input images must be prepared.

- a run directory of ``cnnkit train``: the trained weights, class names and
  normalisation of the run;
- a zoo name (``efficientnet_lite0``), with ``pretrained=True`` its pretrained
  weights and their preprocessing, else fresh weights;
- a layer-table file (``my_net.txt``) or a shipped table (``lenet_slides``): fresh weights.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from cnnkit.models.predict import Preprocessing, load_image
from cnnkit.spec import Spec
from cnnkit.visualize.plot import display_image

SourceKind = Literal["run", "zoo", "table"]
_UNTRAINED_MEAN = 0.5  # fresh weights expect nothing in particular: map pixels to [-1, 1]


@dataclass(frozen=True)
class Subject:
    """A network ready to be looked at."""

    model: nn.Module  # in eval mode
    name: str  # for titles and default file names, e.g. "efficientnet_lite0" or the run directory's name
    kind: SourceKind
    prep: Preprocessing  # input size, normalisation, class names
    run_dir: Path | None = None
    pretrained: bool = False  # trained weights: a run's or a pretrained zoo model's

    def load(self, image: str | Path) -> tuple[torch.Tensor, np.ndarray]:
        """An image file prepared for the network: ``(1, C, H, W)`` input and the ``(H, W[, 3])`` picture to show."""
        x = load_image(image, self.prep)  # (C, H, W), normalised
        return x.unsqueeze(0), display_image(x, self.prep.mean, self.prep.std)


def _numbered(count: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(count))


def _from_run(folder: Path) -> Subject:
    from cnnkit.training.network import load_trained

    model, meta = load_trained(folder)
    shape = tuple(int(s) for s in meta["input_shape"])
    transform = meta["transform"]
    channels = shape[0]
    mean = tuple(transform["mean"]) if transform.get("mean") else (0.0,) * channels
    std = tuple(transform["std"]) if transform.get("std") else (1.0,) * channels
    names = tuple(meta.get("class_names") or ())
    prep = Preprocessing((shape[0], shape[1], shape[2]), mean, std, "bilinear", names)
    return Subject(model.eval(), folder.resolve().name, "run", prep, folder, pretrained=True)


def _from_zoo(name: str, pretrained: bool) -> Subject:
    from cnnkit import models

    info = models.info(name)
    model = models.create(name, pretrained=pretrained)
    if pretrained and info.weights is not None:
        prep = Preprocessing.of_weights(info.weights)
    else:
        channels = info.input_shape[0]
        prep = Preprocessing(info.input_shape, (_UNTRAINED_MEAN,) * channels, (_UNTRAINED_MEAN,) * channels,
                             "bilinear", _numbered(info.num_classes or 0))
    return Subject(model.eval(), name, "zoo", prep, pretrained=pretrained)


def _from_table(table: Spec, name: str) -> Subject:
    from cnnkit import spec

    model = spec.build(table)
    if isinstance(model[-1], nn.Softmax):
        # explain the scores, not the probabilities (softmax flattens their gradients); `del model[-1]` would
        # renumber the layers, and they must keep the table's names (conv1, relu1, ...) that `cnnkit summary` shows
        model = nn.Sequential(OrderedDict(list(model.named_children())[:-1]))
    shape = table.input_shape
    if len(shape) != 3:
        raise ValueError(f"{name}: the table's input is {shape}, not an image (CxHxW)")
    output = table.output_shape
    channels = shape[0]
    prep = Preprocessing((shape[0], shape[1], shape[2]), (_UNTRAINED_MEAN,) * channels,
                         (_UNTRAINED_MEAN,) * channels, "bilinear", _numbered(output[0] if len(output) == 1 else 0))
    return Subject(model.eval(), name, "table", prep)


def resolve(target: str | Path, *, pretrained: bool = False) -> Subject:
    """The network named by ``target``: a run directory, a zoo name or a layer table (see the module doc).

    ``pretrained`` applies to zoo names only (a run has its trained weights; a table has none).
    """
    from cnnkit import models, spec

    text = str(target)
    path = Path(text)
    if path.is_dir():
        if not (path / "model.json").is_file():
            raise ValueError(f"{path} is a folder but not a run directory of `cnnkit train` (no model.json)")
        if pretrained:
            raise ValueError(f"--pretrained applies to zoo models; the run {path} has its own trained weights")
        return _from_run(path)
    if path.suffix or path.exists() or "/" in text:
        if pretrained:
            raise ValueError(f"--pretrained applies to zoo models; a layer table ({path}) has no trained weights")
        return _from_table(spec.load(path), path.name)
    if text in models.names():
        return _from_zoo(text, pretrained)
    tables = spec.shipped_tables()
    if text in tables:
        if pretrained:
            raise ValueError(f"--pretrained applies to zoo models; the table {text!r} has no trained weights")
        return _from_table(spec.load_shipped(text), text)
    near = difflib.get_close_matches(text, [*models.names(), *tables], n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(near)}?" if near else ""
    raise ValueError(f"{text!r} is not a run directory, a layer-table file, a zoo model or a shipped table.{hint} "
                     f"Zoo models: `cnnkit models`; shipped tables: {', '.join(sorted(tables))}")
