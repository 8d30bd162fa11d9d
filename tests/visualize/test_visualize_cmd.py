"""`cnnkit visualize ...` as a user runs it: files written, JSON, and one-line errors that say what is valid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "stripes.png"
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[:, ::8] = 255  # vertical stripes: something for edge filters to answer to
    Image.fromarray(pixels).save(path)
    return path


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    return json.loads(capsys.readouterr().out)


def test_layers_lists_names_shapes_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["visualize", "layers", "lenet_slides", "--json"]) == 0
    layers = {row["name"]: row for row in _json(capsys)["layers"]}  # type: ignore[union-attr]
    assert list(layers)[:4] == ["conv1", "relu1", "maxpool1", "conv2"]
    assert layers["conv1"]["output_shape"] == [6, 28, 28] and layers["conv1"]["default_for"] == "feature-maps"
    assert layers["relu2"]["default_for"] == "gradcam"  # conv2's rectified output
    assert layers["dense1"]["maps"] is False
    assert main(["visualize", "layers", "lenet_slides"]) == 0
    assert "conv2     Conv2d             16x10x10       feature-maps" in capsys.readouterr().out


def test_filters_feature_maps_and_gradcam_write_their_files(photo: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["visualize", "filters", "lenet_slides", "--json"]) == 0
    drawn = _json(capsys)
    assert drawn["files"] == ["lenet_slides-filters.png"] and drawn["shape"] == [6, 3, 5, 5]
    assert (tmp_path / "lenet_slides-filters.png").stat().st_size > 5000
    assert main(["visualize", "feature-maps", "lenet_slides", "--image", str(photo), "--layers", "relu1", "conv2",
                 "--channels", "4", "--out", "maps.png"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "wrote maps.png: relu1 6x28x28, conv2 16x10x10"
    assert main(["visualize", "gradcam", "lenet_slides", "--image", str(photo), "--class", "3", "--json"]) == 0
    cam = _json(capsys)
    assert (cam["class"], cam["layer"], cam["grid"]) == (3, "relu2", [10, 10])
    assert cam["files"] == ["lenet_slides-gradcam-stripes.png"] and Path(cam["files"][0]).is_file()  # type: ignore[index]


def test_visualize_errors_are_one_line_and_name_the_fix(photo: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["feature-maps", "lenet_slides", "--image", str(photo), "--layers", "dense1"],
         "layer 'dense1' outputs shape 120, not a stack of 2-D maps (C x H x W); choose a layer before the flatten or "
         "global pooling, valid names: conv1, relu1, maxpool1, conv2, relu2, maxpool2. Received: layer='dense1'"),
        (["gradcam", "lenet_slides", "--image", str(photo), "--layer", "conv3"], "no layer with feature maps named "
         "'conv3'; valid names: conv1, relu1, maxpool1, conv2, relu2, maxpool2. Received: layer='conv3'"),
        (["filters", "lenet_slides", "--pretrained"], "--pretrained applies to zoo models; the table 'lenet_slides' "
         "has no trained weights"),
        (["filters", "lenet_slide"], "RUN_OR_MODEL 'lenet_slide' is not a run directory, a layer-table file, a "
         "shipped table or a zoo model. Did you mean lenet_slides"),
        (["saliency", "lenet_slides", "--image", str(tmp_path / "none.png")], "cannot read image"),
        (["curves", str(tmp_path)], "metrics.jsonl: no such file"),
    ]
    for args, message in cases:
        assert main(["visualize", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("cnnkit: error: ") and err.count("\n") == 1 and message in err, (args, err)


def test_random_weights_are_called_untrained_and_the_fix_is_named(photo: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["visualize", "filters", "lenet_slides", "--out", str(tmp_path / "f.png")]) == 0
    assert ("note: lenet_slides is untrained (random weights): its filters and maps show no learnt features; give a "
            "trained run (cnnkit train) or a zoo model with --pretrained") in capsys.readouterr().out
    assert main(["visualize", "feature-maps", "efficientnet_lite0", "--image", str(photo), "--out",
                 str(tmp_path / "m.png")]) == 0
    assert "give --pretrained (its pretrained weights)" in capsys.readouterr().out
