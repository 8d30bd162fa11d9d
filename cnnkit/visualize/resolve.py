"""RUN_OR_MODEL: the network a visualisation looks at, and how its input images must be prepared.

The name is resolved by :func:`cnnkit.resolve.resolve` (the one precedence every command uses):

- a run directory of ``cnnkit train``: the trained weights, class names and
  image preparation of the run (files are read exactly as its training data was);
- a layer-table file (``my_net.txt``) or a shipped table (``lenet_slides``): fresh weights;
- a zoo name (``efficientnet_lite0``), with ``pretrained=True`` its pretrained
  weights and their preprocessing, else fresh weights.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from cnnkit.images import ImagePrep, input_from_file
from cnnkit.spec import Spec

SourceKind = Literal["run", "zoo", "table"]
_UNTRAINED_MEAN = 0.5  # fresh weights expect nothing in particular: map pixels to [-1, 1]


@dataclass(frozen=True)
class Subject:
    """A network ready to be looked at."""

    model: nn.Module  # in eval mode
    name: str  # for titles and default file names, e.g. "efficientnet_lite0" or the run directory's name
    kind: SourceKind
    prep: ImagePrep  # input shape, fit, resampling, normalisation
    class_names: tuple[str, ...]
    run_dir: Path | None = None
    pretrained: bool = False  # trained weights: a run's or a pretrained zoo model's

    def load(self, image: str | Path) -> tuple[torch.Tensor, np.ndarray]:
        """An image file prepared for the network: ``(1, C, H, W)`` input and the ``(H, W[, 3])`` picture to show."""
        x = input_from_file(image, self.prep)  # (C, H, W), normalised
        return x.unsqueeze(0), self.prep.show(x)


def _numbered(count: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(count))


def _untrained(shape: tuple[int, ...]) -> ImagePrep:
    channels = shape[0]
    return ImagePrep((shape[0], shape[1], shape[2]), "crop", "bilinear", (_UNTRAINED_MEAN,) * channels,
                     (_UNTRAINED_MEAN,) * channels)


def _from_run(folder: Path) -> Subject:
    from cnnkit.runs import Run

    run = Run.open(folder)
    return Subject(run.network(), folder.resolve().name, "run", run.card.prep(), run.card.class_names, folder,
                   pretrained=True)


def _from_zoo(name: str, pretrained: bool) -> Subject:
    from cnnkit import models
    from cnnkit.inference import weights_prep

    info = models.info(name)
    model = models.create(name, pretrained=pretrained)
    if pretrained and info.weights is not None:
        return Subject(model.eval(), name, "zoo", weights_prep(info.weights), info.weights.class_names(),
                       pretrained=True)
    return Subject(model.eval(), name, "zoo", _untrained(info.input_shape), _numbered(info.num_classes or 0))


def _from_table(table: Spec, name: str) -> Subject:
    from cnnkit import spec
    from cnnkit.memory import fitting

    model = fitting(lambda: spec.build(table), table.input_shape, name)
    if isinstance(model[-1], nn.Softmax):
        # explain the scores, not the probabilities (softmax flattens their gradients); `del model[-1]` would
        # renumber the layers, and they must keep the table's names (conv1, relu1, ...) that `cnnkit summary` shows
        model = nn.Sequential(OrderedDict(list(model.named_children())[:-1]))
    shape = table.input_shape
    if len(shape) != 3:
        raise ValueError(f"{name}: the table's input is {shape}, not an image (CxHxW)")
    output = table.output_shape
    return Subject(model.eval(), name, "table", _untrained(shape), _numbered(output[0] if len(output) == 1 else 0))


def resolve(target: str | Path, *, pretrained: bool = False) -> Subject:
    """The network named by ``target``: a run directory, a layer table or a zoo name (see the module doc).

    ``pretrained`` applies to zoo names only (a run has its trained weights; a table has none).
    """
    from cnnkit.resolve import resolve as resolve_name

    found = resolve_name(target, flag="RUN_OR_MODEL")
    if pretrained and found.kind != "zoo":
        what = (f"the run {found.path} has its own trained weights" if found.kind == "run" else
                f"the table {found.name!r} has no trained weights" if found.shipped else
                f"a layer table ({found.path}) has no trained weights")
        raise ValueError(f"--pretrained applies to zoo models; {what}")
    if found.kind == "run":
        assert found.path is not None
        return _from_run(found.path)
    if found.kind == "table":
        return _from_table(found.table(), found.path.name if found.path else found.name)
    return _from_zoo(found.name, pretrained)
