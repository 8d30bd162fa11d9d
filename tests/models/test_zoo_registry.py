"""The registry: names, info, and the errors for duplicates, unknown names and unknown options."""

from __future__ import annotations

import pytest
from torch import nn

from cnnkit import models
from cnnkit.models import registry

EXPECTED = {
    "lenet5", "keras_example", "alexnet", "vgg11", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50",
    "mobilenet_v1", "efficientnet_lite0", "resnet_small", "vgg_small", "fastnet", "unet", "conv_autoencoder",
    "denoising_autoencoder", "plain_deep", "residual_deep",
}


def test_names_are_sorted_and_complete() -> None:
    names = models.names()
    assert names == sorted(names)
    assert set(names) >= EXPECTED


def test_info_comes_from_the_decorator_and_the_signature() -> None:
    lenet = models.info("lenet5")
    assert (lenet.kind, lenet.input_shape, lenet.num_classes, lenet.pretrained) == ("classification", (3, 32, 32), 10, False)
    assert lenet.options == ("input_size", "activation", "pooling")
    assert lenet.description.startswith("LeNet-5")
    effnet = models.info("efficientnet_lite0")
    assert effnet.pretrained and effnet.weights is models.EFFICIENTNET_LITE0_IMAGENET
    assert (effnet.input_shape, effnet.num_classes) == ((3, 224, 224), 1000)
    assert models.info("unet").kind == "segmentation"
    auto = models.info("conv_autoencoder")
    assert (auto.kind, auto.num_classes, auto.input_shape) == ("autoencoder", None, (1, 28, 28))


def test_duplicate_registration_raises_and_keeps_the_first() -> None:
    before = models.info("lenet5")

    def lenet5(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        """An impostor."""
        return nn.Identity()

    with pytest.raises(ValueError, match=r"a model named 'lenet5' is already registered \(by cnnkit\.models\.classic\).*Received: name='lenet5'"):
        models.register(kind="classification", input_size=32)(lenet5)
    with pytest.raises(ValueError, match=r"already registered"):
        models.register(kind="classification", input_size=32, name="vgg16")(lenet5)
    assert models.info("lenet5") is before


def test_register_checks_task_and_input_size() -> None:
    def toy(num_classes: int = 2, in_channels: int = 1, input_size: int = 28) -> nn.Module:
        """Toy."""
        return nn.Identity()

    with pytest.raises(ValueError, match=r"`kind` must be one of classification, segmentation, autoencoder, detection, instance\. Received: kind='captioning'"):
        models.register(kind="captioning", input_size=28)(toy)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"model 'toy': the entry function's default input_size \(28\) differs from the registered one\. Received: input_size=32"):
        models.register(kind="classification", input_size=32)(toy)
    assert "toy" not in models.names()


def test_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'\. Did you mean 'resnet18', .*Received: name='resnet19'"):
        models.create("resnet19")
    with pytest.raises(ValueError, match=r"unknown model 'lenet'\. Did you mean 'lenet5'"):
        models.info("lenet")
    with pytest.raises(ValueError, match=r"unknown model 'zzz'\. Run `cnnkit models` for the list\. Received: name='zzz'"):
        models.create("zzz")


def test_unknown_option_names_the_option_and_the_model() -> None:
    with pytest.raises(TypeError, match=r"model 'lenet5' has no option 'activaton' \(its options: input_size, activation, pooling\)\. Received: activaton='tanh'"):
        models.create("lenet5", activaton="tanh")
    with pytest.raises(TypeError, match=r"model 'resnet18' has no option 'width'"):
        models.create("resnet18", width=2)


def test_common_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"model 'conv_autoencoder' \(autoencoder\) has no classes.*Received: num_classes=5"):
        models.create("conv_autoencoder", num_classes=5)
    with pytest.raises(ValueError, match=r"model 'lenet5': `num_classes` must be a positive int\. Received: num_classes=0"):
        models.create("lenet5", num_classes=0)
    with pytest.raises(ValueError, match=r"`in_channels` must be a positive int\. Received: in_channels=True"):
        models.create("lenet5", in_channels=True)
    with pytest.raises(ValueError, match=r"model 'vgg16' has no pretrained weights; models that have: efficientnet_lite0, efficientnet_lite1, efficientnet_lite2\. Received: pretrained=True"):
        models.create("vgg16", pretrained=True)


def test_create_passes_options_and_common_arguments() -> None:
    model = models.create("vgg_small", num_classes=7, in_channels=3, width=8)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert (linear[-1].in_features, linear[-1].out_features) == (32, 7)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert (first.in_channels, first.out_channels) == (3, 8)
    assert registry.num_parameters("vgg_small", width=8) < registry.num_parameters("vgg_small")
