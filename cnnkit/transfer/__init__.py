"""Transfer learning: the slides' three ways to reuse a pretrained network, over any backbone.

    >>> from cnnkit.transfer import transfer
    >>> result = transfer(base="efficientnet_lite0", data="fashion-mnist", strategy="extract",
    ...                   train_per_class=100)  # doctest: +SKIP
    >>> result.accuracy  # doctest: +SKIP

- :func:`transfer`: one strategy (``extract``, ``freeze:K``, ``finetune``) into a run directory;
- :func:`compare`: training from scratch and each strategy on the same split, side by side;
- :func:`load_base`: a base network from the zoo, a run directory or a torchvision-format file;
- :func:`audit`: for each layer, trainable or frozen, and whether BatchNorm statistics can change.

The names are imported on first use, so that reading a transfer run's network
(:mod:`cnnkit.transfer.net`, what ``cnnkit evaluate`` and ``predict`` need)
does not import the training code.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Base": "backbone", "load_base": "backbone",
    "CompareResult": "comparison", "compare": "comparison",
    "Features": "config", "Strategy": "config", "TransferConfig": "config",
    "AuditRow": "freeze", "Block": "freeze", "audit": "freeze", "audit_text": "freeze", "blocks": "freeze",
    "TransferResult": "strategies", "features_text": "strategies", "transfer": "strategies",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"cnnkit.transfer.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'cnnkit.transfer' has no attribute {name!r}")
