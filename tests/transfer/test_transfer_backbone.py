"""Base networks from torchvision-format files (weights_only), with one clear message for a file that does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cnnkit import models
from cnnkit.cli import main
from cnnkit.transfer import load_base
from cnnkit.transfer.net import InputAdapter, find_classifier


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the zoo's ResNet-18 uses torchvision's key names, so its state dict is a torchvision-format weight file
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-test.pth"
    torch.save(models.create("resnet18").state_dict(), path)
    return path


def test_torchvision_file_loads_with_its_weights(resnet18_file: Path) -> None:
    base = load_base("resnet18", str(resnet18_file))
    saved = torch.load(resnet18_file, weights_only=True)
    assert base.classifier == "fc" and base.input_shape == (3, 224, 224)
    assert base.mean == (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation
    for key in ("conv1.weight", "layer4.1.bn2.running_var", "fc.bias"):
        assert torch.equal(base.model.state_dict()[key], saved[key])
    assert base.source == {"kind": "zoo", "name": "resnet18", "kwargs": {}}


def test_missing_and_extra_keys_are_named(resnet18_file: Path, tmp_path: Path) -> None:
    state = torch.load(resnet18_file, weights_only=True)
    del state["layer3.0.conv1.weight"], state["layer3.0.bn1.bias"]
    state["head.weight"] = torch.zeros(2, 2)
    damaged = tmp_path / "damaged.pth"
    torch.save(state, damaged)
    message = (rf"--weights {damaged} does not fit --base resnet18 \(2 missing keys: layer3.0.conv1.weight, "
               r"layer3.0.bn1.bias; 1 unexpected keys: head.weight\)$")
    with pytest.raises(ValueError, match=message):
        load_base("resnet18", str(damaged))


def test_another_architecture_is_named_with_its_first_keys(resnet18_file: Path) -> None:
    message = (r"does not fit --base resnet34 \(\d+ missing keys: layer1.2.conv1.weight, layer1.2.bn1.weight, "
               r"layer1.2.bn1.bias ...\); it holds resnet18 weights: use --base resnet18")
    with pytest.raises(ValueError, match=message):
        load_base("resnet34", str(resnet18_file))


def test_other_shapes_and_unsafe_files(resnet18_file: Path, tmp_path: Path) -> None:
    state = torch.load(resnet18_file, weights_only=True)
    state["fc.weight"], state["fc.bias"] = torch.zeros(7, 512), torch.zeros(7)
    seven = tmp_path / "seven.pth"
    torch.save(state, seven)
    with pytest.raises(ValueError, match=r"2 other shapes: fc.weight \(7, 512\) instead of \(1000, 512\), fc.bias"):
        load_base("resnet18", str(seven))
    pickled = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), pickled)  # a whole pickled module: loading it would run arbitrary code
    with pytest.raises(ValueError, match=r"not a weight file that loads with weights_only=True"):
        load_base("resnet18", str(pickled))


def test_cli_reports_a_bad_base_in_one_line(resnet18_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transfer", "--base", "resnet34", "--weights", str(resnet18_file), "--data", "digits",
                 "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: --weights") and err.count("\n") == 1 and "use --base resnet18" in err
    assert main(["transfer", "--base", "vgg16", "--data", "digits", "--dry-run"]) == 2
    assert "has no packaged pretrained weights; give a torchvision-format weight file" in capsys.readouterr().err


def test_classifier_is_the_last_dense_layer_called() -> None:
    # declared first, called last: the forward pass decides, not the declaration order
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.out = nn.Linear(8, 3)
            self.body = nn.Sequential(nn.Conv2d(1, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.body(x))

    assert find_classifier(Net(), (1, 8, 8)) == "out"
    conv_only = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Identity(),
                              nn.Unflatten(1, (4, 1, 1)), nn.Conv2d(4, 2, 1), nn.Flatten())
    with pytest.raises(ValueError, match=r"ends in '5' \(Conv2d\), not in a dense classifier"):
        find_classifier(conv_only, (1, 8, 8))


def test_input_adapter_channels_size_and_normalisation() -> None:
    adapter = InputAdapter(1, 3, (16, 16), (0.5, 0.25, 0.0), (0.5, 0.25, 2.0))
    x = torch.rand(2, 1, 8, 8)
    y = adapter(x)
    assert y.shape == (2, 3, 16, 16)
    up = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(y[:, 2:3], up / 2.0)
    torch.testing.assert_close(y[:, 0:1], (up - 0.5) / 0.5)
    with pytest.raises(ValueError, match=r"cannot turn 2-channel images into the 3 channels"):
        InputAdapter(2, 3, (8, 8), (0, 0, 0), (1, 1, 1))
