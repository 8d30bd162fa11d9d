"""Training recipes: named, measured presets of :class:`~cnnkit.training.TrainConfig` options, in one place.

``cnnkit train --recipe fast --data fashion-mnist`` starts from ``RECIPES["fast"]``;
any option given as well overrides the recipe's (``--recipe fast --epochs 12``).
The run's ``config.json`` keeps every resolved option and the recipe's name.
:meth:`TrainConfig.from_dict` applies the recipe (the CLI and
``cnnkit.train(recipe="fast", ...)`` go through it); building ``TrainConfig(...)``
directly takes the fields as given.
"""

from __future__ import annotations

import difflib
from typing import Any

# fast: Fashion-MNIST to 93% test accuracy within 120 s of training on a 2-core laptop-class CPU (bf16, AMX).
# Chosen by test accuracy per epoch (which does not depend on the machine's load) and single-thread CPU time per
# image; the measurements are in docs/benchmarks.md ("How --recipe fast was chosen").
FAST: dict[str, Any] = {
    "model": "fastnet",  # widths 16/48/96 at 28/14/7: 93.1-93.3% in 6 epochs, for 0.9x a plain 16/32/64 VGG's time
    "epochs": 6,  # 5 epochs reach 92.6-92.8%; the 6th costs ~15 s and crosses 93%
    "batch_size": 256,  # 128 learned no more per epoch here and runs slower per image
    "optimizer": "sgd",
    "nesterov": True,
    "momentum": 0.9,
    "lr": 0.2,
    "weight_decay": 5e-4,
    "schedule": "onecycle",  # 25% linear rise, then cosine to ~0 (a 15% rise: 0.1 point less)
    "label_smoothing": 0.1,  # 0.2: the same accuracy
    "augment": ["flip"],  # mirror images: clothes are left-right symmetric. Shifts (crop) cost 0.3-0.8 points in 6 epochs
    "tta": True,  # also evaluating the mirror image: +0.15-0.3 points for one extra forward pass
    "precision": "auto",  # bf16 where the CPU has AVX512-BF16/AMX (1.8x fp32 for fastnet here), AMP on GPUs
    "channels_last": True,  # oneDNN's bf16 convolutions work in NHWC: 1.6x faster for fastnet on this CPU
}

RECIPES: dict[str, dict[str, Any]] = {"fast": FAST}


def recipe_options(name: str) -> dict[str, Any]:
    """A copy of the recipe's options; an unknown name is a ``ValueError`` that lists the known ones."""
    if name not in RECIPES:
        near = difflib.get_close_matches(name, RECIPES, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"--recipe: unknown recipe {name!r}.{hint} Known: {', '.join(RECIPES)}")
    return {key: list(value) if isinstance(value, list) else value for key, value in RECIPES[name].items()}
