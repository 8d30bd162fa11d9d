"""Transfer learning: the slides' three ways to reuse a pretrained network, over any backbone.

    >>> from cnnkit.transfer import transfer
    >>> result = transfer(base="efficientnet_lite0", data="fashion-mnist", strategy="extract",
    ...                   train_per_class=100)  # doctest: +SKIP
    >>> result.accuracy  # doctest: +SKIP

- :func:`transfer`: one strategy (``extract``, ``freeze:K``, ``finetune``) into a run directory;
- :func:`compare`: training from scratch and each strategy on the same split, side by side;
- :func:`load_base`: a base network from the zoo, a run directory or a torchvision-format file;
- :func:`audit`: for each layer, trainable or frozen, and whether BatchNorm statistics can change.
"""

from cnnkit.transfer.backbone import Base, load_base
from cnnkit.transfer.compare import CompareResult, compare
from cnnkit.transfer.config import Features, Strategy, TransferConfig
from cnnkit.transfer.freeze import AuditRow, Block, audit, audit_text, blocks
from cnnkit.transfer.strategies import TransferResult, features_text, transfer

__all__ = [
    "AuditRow",
    "Base",
    "Block",
    "CompareResult",
    "Features",
    "Strategy",
    "TransferConfig",
    "TransferResult",
    "audit",
    "audit_text",
    "blocks",
    "compare",
    "features_text",
    "load_base",
    "transfer",
]
