"""Where a base network comes from: the zoo's pretrained weights, a cnnkit run directory, or a weight file.

Whatever the source, :func:`load_base` returns a :class:`Base`: the whole
network with its weights, the input it expects (shape and normalisation),
the dotted name of its classifier, and a JSON description from which
``cnnkit.training.network.build`` rebuilds the same layout without the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.transfer.net import find_classifier

# torchvision's ImageNet preprocessing, which its weight files (and so the zoo's torchvision-named models) expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# architectures whose torchvision state dicts load into the zoo's models unchanged (same key names)
TORCHVISION_ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "alexnet", "vgg11", "vgg16", "vgg16_bn")


@dataclass
class Base:
    """A pretrained network ready to be transferred."""

    model: nn.Module  # the whole network, weights loaded, its original classifier still in place
    source: dict[str, Any]  # how to rebuild the layout (a run's model.json "source"), without weights
    input_shape: tuple[int, int, int]  # (C, H, W) it was trained on
    mean: tuple[float, ...]  # its input normalisation, per channel, on pixels in [0, 1]
    std: tuple[float, ...]
    classifier: str  # dotted name of the last dense layer, which a new head replaces
    description: str  # e.g. "efficientnet_lite0 (ImageNet weights)"


def load_base(base: str, weights: str | None = None) -> Base:
    """The base network ``base``: a run directory, or a zoo name (its packaged weights, or the file ``weights``)."""
    from cnnkit import models
    from cnnkit.resolve import resolve

    path = Path(base)
    if path.is_file():
        raise ValueError(f"--base {base}: a file, not a cnnkit run directory or a zoo name; for a weight file give "
                         f"the architecture and the file: --base resnet18 --weights {base}")
    found = resolve(base, accept=("run", "zoo"), flag="--base")
    if found.kind == "run":
        if weights is not None:
            raise ValueError(f"--weights: {base} is a run directory and brings its own weights; leave --weights out")
        return _from_run(path)
    info = models.info(base)
    if info.kind != "classification":
        raise ValueError(f"--base {base}: a {info.kind} network has no classifier to replace; choose a classification "
                         f"model or run directory")
    if weights is not None:
        return _from_file(base, Path(weights))
    if info.weights is None:
        raise ValueError(f"--base {base} has no packaged pretrained weights; give a torchvision-format weight file "
                         f"with --weights FILE (e.g. {base}-*.pth), or choose efficientnet_lite0 or a run directory")
    model = models.create(base, pretrained=True)
    w = info.weights
    return Base(model, {"kind": "zoo", "name": base, "kwargs": {}}, w.input_size, w.mean, w.std,
                find_classifier(model, w.input_size), f"{base} ({w.name} weights)")


def _from_run(folder: Path) -> Base:
    from cnnkit.runs import Run

    run = Run.open(folder)
    card, prep = run.card, run.card.prep()
    model = run.network()
    channels = card.input_shape[0]
    mean = prep.mean if prep.mean is not None else (0.0,) * channels
    std = prep.std if prep.std is not None else (1.0,) * channels
    data = card.data.name if card.data is not None else "?"
    return Base(model, card.source, card.input_shape, mean, std, find_classifier(model, card.input_shape),
                f"{card.name} (run {folder}, trained on {data})")


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path``, unpickled with ``weights_only=True`` (tensors and plain containers only)."""
    if not path.is_file():
        raise FileNotFoundError(f"--weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file, or one that needs arbitrary unpickling: torch raises several types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"--weights {path}: not a weight file that loads with weights_only=True ({first})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--weights {path}: not a state dict (a mapping of parameter names to tensors)")
    return state


def _differences(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Keys of ``own`` missing from ``state``, keys ``state`` has in excess, and keys whose shapes differ."""
    return {"missing keys": [k for k in own if k not in state],
            "unexpected keys": [k for k in state if k not in own],
            "other shapes": [f"{k} {tuple(state[k].shape)} instead of {tuple(own[k].shape)}" for k in own
                             if k in state and state[k].shape != own[k].shape]}


def _describe(differences: dict[str, list[str]]) -> str:
    """The count and the first three keys of each kind of difference, e.g. ``2 missing keys: a, b``."""
    return "; ".join(f"{len(keys)} {label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                     for label, keys in differences.items() if keys)


def _closest_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """The torchvision-named zoo architecture whose state dict matches ``state`` exactly, if any."""
    from cnnkit import models

    for name in TORCHVISION_ARCHITECTURES:
        with torch.device("meta"):  # only names and shapes are compared: no memory, no initialisation
            own = models.create(name).state_dict()
        if not any(_differences(own, state).values()):
            return name
    return None


def _from_file(name: str, path: Path) -> Base:
    from cnnkit import models

    state = _load_state_dict(path)
    model = models.create(name)
    own = model.state_dict()
    differences = _differences(own, state)
    count = sum(len(keys) for keys in differences.values())
    if count:
        # a few keys off is a damaged or edited file; many, another network: say which, if the zoo has it
        match = _closest_architecture(state) if count > len(own) // 10 else None
        hint = f"; it holds {match} weights: use --base {match}" if match else ""
        raise ValueError(f"--weights {path} does not fit --base {name} ({_describe(differences)}){hint}")
    model.load_state_dict(state)
    info = models.info(name)
    # a file for a model with packaged weights was trained like them; torchvision's files on ImageNet's statistics
    mean, std = (info.weights.mean, info.weights.std) if info.weights else (IMAGENET_MEAN, IMAGENET_STD)
    return Base(model, {"kind": "zoo", "name": name, "kwargs": {}}, info.input_shape, mean, std,
                find_classifier(model, info.input_shape), f"{name} (weights {path.name})")
