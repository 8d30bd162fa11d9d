"""Contracts every registered model must pass, and the published parameter counts.

Each model runs forward and backward on a small batch at its default input
size, or at a reduced size where the architecture allows (the ImageNet
networks pool adaptively), so the whole file stays fast on two CPU cores.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit import models
from cnnkit.summarize import summary

# reduced (H, W) for the big ImageNet networks: same layers, a fraction of the compute
REDUCED_SIZE: dict[str, tuple[int, int]] = {
    "alexnet": (64, 64),  # the smallest AlexNet takes is 63: 11x11/4, then three 3x3/2 pools
    "vgg11": (32, 32),
    "vgg16": (32, 32),
    "vgg16_bn": (32, 32),
    "resnet18": (64, 64),
    "resnet34": (64, 64),
    "resnet50": (64, 64),
    "mobilenet_v1": (64, 64),
    "efficientnet_lite0": (64, 64),
    "unet": (32, 32),
}

# (name, options) -> parameters, with 1000 classes where not said: the papers' / torchvision's / Keras' figures
PUBLISHED_COUNTS: list[tuple[str, dict[str, object], int]] = [
    ("lenet5", {}, 62_006),
    ("keras_example", {}, 8_459_242),
    ("alexnet", {}, 61_100_840),
    ("vgg11", {}, 132_863_336),
    ("vgg16", {}, 138_357_544),
    ("vgg16_bn", {}, 138_365_992),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    ("mobilenet_v1", {}, 4_231_976),
    ("efficientnet_lite0", {}, 4_652_008),
    ("unet", {}, 31_037_698),  # milesial/Pytorch-UNet with transposed convolutions, 3 channels, 2 classes
    ("resnet_small", {}, 272_186),  # ResNet-20 with 1x1-conv shortcuts ("0.27M" in He et al.)
    ("fastnet", {}, 153_786),
    # ours, by hand: 3x3 stem (9*1 + 1)*16; 6 convs (9*16 + 1)*16; (9*16 + 1)*32 + 5*(9*32 + 1)*32;
    # (9*32 + 1)*64 + 5*(9*64 + 1)*64; (64 + 1)*10. The skips (option A) add no parameters
    ("plain_deep", {}, 160 + 6 * 2_320 + 4_640 + 5 * 9_248 + 18_496 + 5 * 36_928 + 650),
    ("residual_deep", {}, 268_746),  # ours: (9*1*16) + 16*2 + (9*16*48 + 9*48*48) + (9*48*96 + 9*96*96) + 4*(48+96) + 970
]


def _input_shape(name: str) -> tuple[int, int, int]:
    channels, height, width = models.info(name).input_shape
    height, width = REDUCED_SIZE.get(name, (height, width))
    return channels, height, width


def _expected_output(name: str, batch: int, shape: tuple[int, int, int]) -> tuple[int, ...]:
    info = models.info(name)
    if info.kind == "classification":
        return (batch, info.num_classes or 0)
    if info.kind == "segmentation":
        return (batch, info.num_classes or 0, shape[1], shape[2])
    if info.kind == "detection":  # CenterNet: a heatmap per class, then size and offset, on a 4x coarser grid
        return (batch, (info.num_classes or 0) + 4, shape[1] // 4, shape[2] // 4)
    if info.kind == "instance":  # and per cell a mask head's 97 weights and 8 mask features (CondInst)
        return (batch, (info.num_classes or 0) + 4 + 97 + 8, shape[1] // 4, shape[2] // 4)
    return (batch, *shape)  # autoencoder: the input's shape


@pytest.mark.parametrize("name", models.names())
def test_model_contract(name: str) -> None:
    """Output shape, no NaN, a gradient for every parameter, and the summary's total, on one model instance."""
    torch.manual_seed(0)
    model = models.create(name)
    shape = _input_shape(name)
    x = torch.rand(2, *shape)
    out = model.train()(x)
    assert tuple(out.shape) == _expected_output(name, 2, shape)
    assert torch.isfinite(out).all(), f"{name}: non-finite output"
    # a non-linear loss: the sum of a batch-normalised output has zero gradient by construction
    loss = (out - torch.rand_like(out)).square().mean()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"{name}: no gradient reaches {no_grad}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradient in {bad}"
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        assert tuple(model.eval()(x[:1]).shape) == _expected_output(name, 1, shape)
    total = sum(p.numel() for p in model.parameters())
    # the meta-device count that `cnnkit models` prints is the real model's count, and so is the summary's
    assert total == models.num_parameters(name)
    assert summary(model, shape).total_params == total


@pytest.mark.parametrize(("name", "options", "count"), PUBLISHED_COUNTS, ids=[c[0] for c in PUBLISHED_COUNTS])
def test_published_parameter_counts(name: str, options: dict[str, object], count: int) -> None:
    assert models.num_parameters(name, **options) == count


def test_every_model_is_documented() -> None:
    for name in models.names():
        info = models.info(name)
        assert info.description, f"{name}: the entry function needs a docstring"
        assert info.kind in models.KINDS


def test_lenet5_fashion_mnist_size_and_slide_layers() -> None:
    model = models.create("lenet5", in_channels=1, input_size=28)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linear[0].in_features == 16 * 4 * 4  # 28 -> 24 -> 12 -> 8 -> 4
    # the slide's table, with one bias per unit: 456, 2416, 48120, 10164, 850
    counts = [sum(p.numel() for p in m.parameters()) for m in models.create("lenet5").modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert counts == [456, 2416, 48120, 10164, 850]


def test_lenet5_options() -> None:
    model = models.create("lenet5", activation="tanh", pooling="avg")
    assert any(isinstance(m, nn.Tanh) for m in model.modules())
    assert any(isinstance(m, nn.AvgPool2d) for m in model.modules())
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in model.modules())
    with pytest.raises(ValueError, match=r"lenet5: `activation` must be one of 'relu', 'tanh', 'sigmoid'\. Received: activation='gelu'"):
        models.create("lenet5", activation="gelu")
    with pytest.raises(ValueError, match=r"`pooling` must be one of 'max', 'avg'\. Received: pooling='min'"):
        models.create("lenet5", pooling="min")


def test_flatten_models_reject_other_input_sizes() -> None:
    with pytest.raises(ValueError, match=r"lenet5 was built for 32x32 inputs; create it with input_size=\(28, 28\).*Received: input shape=\(1, 3, 28, 28\)"):
        models.create("lenet5")(torch.rand(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"resnet18 expects \(N, 3, H, W\) inputs\. Received: input shape=\(1, 1, 64, 64\)"):
        models.create("resnet18")(torch.rand(1, 1, 64, 64))


def test_keras_example_matches_the_slide_summary() -> None:
    model = models.create("keras_example")
    counts = [sum(p.numel() for p in m.parameters()) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert counts == [320, 9248, 18496, 36928, 8389120, 5130]
    shapes = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    model(torch.rand(1, 1, 150, 150))
    for hook in hooks:
        hook.remove()
    assert shapes == [(32, 148, 148), (32, 74, 74), (32, 72, 72), (32, 36, 36), (64, 34, 34), (64, 32, 32), (64, 16, 16)]


def test_torchvision_state_dict_layout() -> None:
    with torch.device("meta"):
        resnet18, resnet50 = models.create("resnet18"), models.create("resnet50")
        vgg16_bn, alexnet = models.create("vgg16_bn"), models.create("alexnet")
    # torchvision's key counts (parameters + BN running stats + num_batches_tracked)
    assert len(resnet18.state_dict()) == 122
    assert len(resnet50.state_dict()) == 320
    assert {"layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var", "layer4.1.bn2.bias", "fc.weight"} <= set(resnet18.state_dict())
    assert {"layer1.0.downsample.0.weight", "layer4.2.conv3.weight", "layer4.2.bn3.num_batches_tracked"} <= set(resnet50.state_dict())
    assert resnet50.state_dict()["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)
    assert resnet50.layer2[0].conv2.stride == (2, 2)  # v1.5: the stride sits on the 3x3 convolution
    assert {"features.0.weight", "features.1.running_mean", "features.41.weight", "classifier.6.weight"} <= set(vgg16_bn.state_dict())
    assert list(alexnet.state_dict()) == [
        f"{part}.{i}.{p}" for part, idx in (("features", (0, 3, 6, 8, 10)), ("classifier", (1, 4, 6))) for i in idx for p in ("weight", "bias")
    ]


def test_efficientnet_lite0_layout() -> None:
    from cnnkit.layers import Conv2dSame

    model = models.create("efficientnet_lite0")
    keys = set(model.state_dict())
    assert {"_conv_stem.weight", "_bn0.running_var", "_blocks.0._depthwise_conv.weight", "_blocks.1._expand_conv.weight",
            "_blocks.15._project_conv.weight", "_conv_head.weight", "_bn1.weight", "_fc.bias"} <= keys
    assert "_blocks.0._expand_conv.weight" not in keys  # the first block does not expand
    assert len(model._blocks) == 16
    assert isinstance(model._conv_stem, Conv2dSame)
    assert all(isinstance(b._depthwise_conv, Conv2dSame) for b in model._blocks)
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert not any(isinstance(m, (nn.ReLU, nn.SiLU, nn.Sigmoid)) for m in model.modules())  # ReLU6 only, no SE
    # TF "same": 225 -> ceil(225/2) = 113 with the extra pixel at the bottom/right
    assert model._conv_stem(torch.rand(1, 3, 225, 225)).shape == (1, 32, 113, 113)


def test_mobilenet_width_multiplier() -> None:
    model = models.create("mobilenet_v1", width=0.5, num_classes=10)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)
    assert model.fc.in_features == 512
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 13 and all(m.groups == m.in_channels for m in depthwise)
    with pytest.raises(ValueError, match=r"mobilenet_v1: `width` must be a positive number\. Received: width=0"):
        models.create("mobilenet_v1", width=0)


@pytest.mark.parametrize("name", ["resnet_small", "vgg_small", "fastnet"])
def test_small_networks_take_32x32_colour_images(name: str) -> None:
    model = models.create(name, in_channels=3, num_classes=100)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


def test_resnet_small_depths() -> None:
    assert models.num_parameters("resnet_small", depth=8) < models.num_parameters("resnet_small", depth=20)
    blocks = [m for m in models.create("resnet_small", depth=32).modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 15  # 3 stages of n = (32 - 2) / 6 = 5
    with pytest.raises(ValueError, match=r"resnet_small: `depth` must be 6n \+ 2.*Received: depth=18"):
        models.create("resnet_small", depth=18)


def test_unet_keeps_the_input_size() -> None:
    model = models.create("unet", width=8, in_channels=1, num_classes=3)
    assert model(torch.rand(1, 1, 48, 80)).shape == (1, 3, 48, 80)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.modules()) == 4


def test_unet_size_error_names_nearest_valid_sizes() -> None:
    model = models.create("unet", width=4)
    with pytest.raises(ValueError, match=r"multiples of 16.*height 100: use 96 or 112.*Received: input shape=\(1, 3, 100, 64\)"):
        model(torch.rand(1, 3, 100, 64))
    with pytest.raises(ValueError, match=r"height 40: use 32 or 48; width 8: use 16\. Received"):
        model(torch.rand(1, 3, 40, 8))


@pytest.mark.parametrize("name", ["conv_autoencoder", "denoising_autoencoder"])
def test_autoencoders_reconstruct_any_size(name: str) -> None:
    model = models.create(name, in_channels=3, input_size=(30, 33), latent=12).eval()
    x = torch.rand(2, 3, 30, 33)
    out = model(x)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1  # sigmoid output, like the pixels
    assert model.encode(x).shape == (2, 12)


def test_denoising_autoencoder_adds_noise_only_in_training() -> None:
    model = models.create("denoising_autoencoder", noise=0.5)
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
    assert not any(type(m).__name__ == "GaussianNoise" for m in models.create("conv_autoencoder").modules())


@pytest.mark.parametrize(("name", "options"), [
    ("lenet5", {"in_channels": 1, "input_size": 28}),
    ("vgg_small", {}),
    ("resnet_small", {"depth": 8}),
    ("fastnet", {}),
], ids=["lenet5", "vgg_small", "resnet_small", "fastnet"])
def test_small_networks_can_fit_a_batch(name: str, options: dict[str, object]) -> None:
    """A network that cannot memorise 16 images in 40 steps has a broken path somewhere."""
    torch.manual_seed(0)
    model = models.create(name, **options).train()
    x, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    logits = model(x)
    assert nn.functional.cross_entropy(logits, y).item() < 0.1 * first
    assert torch.equal(logits.argmax(dim=1), y)
