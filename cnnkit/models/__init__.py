"""The model zoo: a registry of small entry functions that return plain ``torch.nn.Module`` networks.

    >>> from cnnkit import models
    >>> model = models.create("lenet5", num_classes=10, in_channels=1, input_size=28)
    >>> models.info("efficientnet_lite0").pretrained
    True

Importing this package registers every network below; ``names()`` lists them.
"""

from __future__ import annotations

# imported for their @register side effect: each module adds its entry functions to the registry
from cnnkit.models import autoencoder, centernet, classic, deep, efficientnet, mobilenet, resnet, small, unet, vgg  # noqa: F401
from cnnkit.models.efficientnet import EFFICIENTNET_LITE0_IMAGENET
from cnnkit.models.pretrained import PretrainedWeights, class_names
from cnnkit.models.registry import (
    KINDS,
    Kind,
    ModelInfo,
    create,
    info,
    names,
    num_parameters,
    option_defaults,
    register,
)

__all__ = [
    "EFFICIENTNET_LITE0_IMAGENET",
    "KINDS",
    "Kind",
    "ModelInfo",
    "PretrainedWeights",
    "class_names",
    "create",
    "info",
    "names",
    "num_parameters",
    "option_defaults",
    "register",
]
