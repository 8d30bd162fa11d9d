"""Localisation and detection trained for real (the shared runs of conftest), their scores recomputed independently,
their predictions on image files, and the CenterNet targets, loss and decoding checked by hand."""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.data import load
from cnnkit.runs import load_run
from cnnkit.tasks.detect import decode, focal_loss, heatmap_targets
from tests.conftest import TrainedRun

pytest.importorskip("pycocotools", reason="detection scores are computed by pycocotools")


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def _iou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ---- localize ------------------------------------------------------------------------------------------------------
def test_localize_scores_are_what_its_network_outputs(localize_run: TrainedRun) -> None:
    evaluation = localize_run.output["evaluation"]
    run = load_run(localize_run.folder)
    test = load("shapes-loc", image_size=32).test
    assert test is not None and test.boxes is not None and evaluation["images"] == len(test)
    model = run.network().eval()
    with torch.inference_mode():
        output = model(run.card.prep().normalise(test.images)).numpy()
    # the box is sigmoid(cx, cy, w, h) as fractions of the image; the class is the largest of the first K outputs
    centre_size = 1 / (1 + np.exp(-output[:, -4:])) * 32
    boxes = np.stack([centre_size[:, 0] - centre_size[:, 2] / 2, centre_size[:, 1] - centre_size[:, 3] / 2,
                      centre_size[:, 0] + centre_size[:, 2] / 2, centre_size[:, 1] + centre_size[:, 3] / 2], 1)
    ious = np.array([_iou(list(b), t) for b, t in zip(boxes, test.boxes.tolist(), strict=True)])
    right = output[:, :-4].argmax(1) == test.labels.numpy()
    assert evaluation["accuracy"] == pytest.approx(right.mean(), abs=1e-4)
    assert evaluation["mean_iou"] == pytest.approx(ious.mean(), abs=1e-4)
    assert evaluation["box_accuracy"] == pytest.approx((ious >= 0.5).mean(), abs=1e-4)
    assert evaluation["localization_accuracy"] == pytest.approx((right & (ious >= 0.5)).mean(), abs=1e-4)
    # three epochs at 32x32 learn the boxes well and the classes somewhat (chance: 1/6, and a box guessed at the
    # centre of the image has a mean IoU near 0.3)
    assert evaluation["mean_iou"] > 0.55 and evaluation["accuracy"] > 0.3, evaluation
    assert set(evaluation["files"]) == {"localization", "localization_mistakes", "metrics"}
    sections = re.findall(r'<section id="([^"]+)">', (localize_run.folder / "report.html").read_text())
    assert {"localization", "localization-mistakes"} <= set(sections)


def test_localize_predicts_the_box_in_the_image_files_own_pixels(localize_run: TrainedRun, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    test = load("shapes-loc", image_size=32).test
    assert test is not None
    picture = test.images[0].permute(1, 2, 0).numpy()
    Image.fromarray(picture).save(tmp_path / "small.png")
    # the same picture 3 times as large, and with 8 pixels of border left and right: the crop to a square finds it
    big = np.pad(np.repeat(np.repeat(picture, 3, 0), 3, 1), ((0, 0), (8, 8), (0, 0)), mode="edge")
    Image.fromarray(big).save(tmp_path / "big.png")
    assert main(["predict", str(localize_run.folder), str(tmp_path / "small.png"), str(tmp_path / "big.png"),
                 "--json"]) == 0
    small, large = (p["objects"] for p in _json(capsys)["predictions"])
    assert len(small) == len(large) == 1 and small[0]["class"] == large[0]["class"]
    expected = [v * 3 + (8 if k % 2 == 0 else 0) for k, v in enumerate(small[0]["box"])]
    # within 1.5 of the network's 32 pixels (resizing 96 pixels down to 32 blurs the edges a little); without the
    # crop and the scale undone the boxes would be 8 to 60 pixels off
    assert large[0]["box"] == pytest.approx(expected, abs=4.5)
    overlay = Image.open(tmp_path / "small.boxes.png")
    assert overlay.size == (256, 256)  # 32 pixels enlarged 8 times, so that the label fits


# ---- detect --------------------------------------------------------------------------------------------------------
def test_detect_scores_are_pycocotools_on_the_written_coco_files(detect_run: TrainedRun) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    evaluation = detect_run.output["evaluation"]
    files = evaluation["files"]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(files["coco_ground_truth"])
        found = truth.loadRes(files["coco_detections"])
        check = COCOeval(truth, found, "bbox")
        check.evaluate()
        check.accumulate()
        check.summarize()
    assert (evaluation["map"], evaluation["map50"], evaluation["map75"]) == pytest.approx(
        tuple(check.stats[:3]), abs=1e-4)
    precision = check.eval["precision"]
    for k, ap in enumerate(evaluation["per_class_ap"]):
        values = precision[:, :, k, 0, -1]
        assert ap == pytest.approx(values[values > -1].mean(), abs=1e-4)
    # the ground truth is the COCO folder's own test annotations, image for image
    written = json.loads((detect_run.folder.parent / "coco" / "test" / "annotations.json").read_text())
    boxes = sorted((Path(i["file_name"]).name, a["bbox"], a["category_id"])
                   for i in written["images"] for a in written["annotations"] if a["image_id"] == i["id"])
    ours = json.loads(Path(files["coco_ground_truth"]).read_text())
    names = {i["id"]: Path(i["file_name"]).name for i in ours["images"]}
    assert boxes == sorted((names[a["image_id"]], a["bbox"], a["category_id"]) for a in ours["annotations"])
    # four epochs on 640 scenes of 32x32 find many objects (an untrained network scores about 0)
    assert evaluation["map50"] > 0.08 and evaluation["f1"] > 0.15, evaluation
    assert evaluation["objects"] == len(ours["annotations"]) and evaluation["images"] == 160
    history = [json.loads(line) for line in (detect_run.folder / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["test_map"] == pytest.approx(evaluation["map"], abs=1e-3)
    sections = re.findall(r'<section id="([^"]+)">', (detect_run.folder / "report.html").read_text())
    assert "detections" in sections


def test_detect_evaluate_and_predict_agree_with_training(detect_run: TrainedRun, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(detect_run.folder), "--json", "--no-report"]) == 0
    again = _json(capsys)
    for key in ("map", "map50", "map75", "per_class_ap", "f1", "objects"):
        assert again[key] == detect_run.output["evaluation"][key]
    image = sorted((detect_run.folder.parent / "coco" / "test" / "images").iterdir())[0]
    assert main(["predict", str(detect_run.folder), str(image), "--json", "--out", str(tmp_path)]) == 0
    prediction = _json(capsys)["predictions"][0]
    # predict's objects are the run's decoding of its network's output, at score 0.3 or more
    run = load_run(detect_run.folder)
    x = run.card.prep().normalise(torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1)[None])
    with torch.inference_mode():
        found = decode(run.network().eval()(x), (4.0, 4.0))[0]
    keep = found.scores >= 0.3
    assert len(prediction["objects"]) == int(keep.sum()) > 0
    assert np.allclose([o["box"] for o in prediction["objects"]], found.boxes[keep].numpy(), atol=0.01)
    assert [o["class"] for o in prediction["objects"]] == found.classes[keep].tolist()
    assert Path(prediction["outputs"]["boxes"]).parent == tmp_path
    # COCO images are stretched to the input size in training, and so in predict: twice as wide, x doubles
    assert run.card.image["fit"] == "stretch"
    wide = tmp_path / "wide.png"
    Image.open(image).convert("RGB").resize((64, 32), Image.Resampling.NEAREST).save(wide)
    assert main(["predict", str(detect_run.folder), str(wide), "--json", "--out", str(tmp_path)]) == 0
    stretched = _json(capsys)["predictions"][0]["objects"]
    doubled = [(o["class"], [o["box"][0] * 2, o["box"][1], o["box"][2] * 2, o["box"][3]])
               for o in prediction["objects"]]
    # resizing 64 pixels down to 32 blurs a little, so a detection near the 0.3 cut may come or go; the others match
    assert len(stretched) >= len(doubled) - 1 and len(stretched) >= 1
    for o in stretched:
        assert any(c == o["class"] and np.allclose(o["box"], box, atol=1.0) for c, box in doubled), (o, doubled)


def test_tasks_refuse_data_without_the_objects_they_need(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    assert main(["train", "--task", "detect", "--data", "digits", "--model", "centernet", "--epochs", "1"]) == 2
    assert "--task detect needs every object's box and class" in capsys.readouterr().err
    assert main(["train", "--task", "instance", "--data", "digits", "--epochs", "1"]) == 2
    assert "--task instance needs every object's mask and class" in capsys.readouterr().err
    assert main(["train", "--task", "localize", "--data", "shapes-det", "--image-size", "32", "--epochs", "1"]) == 2
    assert re.search(r"--task localize needs exactly one object per image; shapes-det/train has \d+ image",
                     capsys.readouterr().err)


# ---- CenterNet's parts, by hand ------------------------------------------------------------------------------------
def test_heatmap_targets_put_a_gaussian_peak_at_each_centre() -> None:
    boxes = torch.tensor([[[2.0, 3.0, 8.0, 6.0], [10.0, 10.0, 14.0, 16.0], [0.0, 0.0, 0.0, 0.0]]])
    classes = torch.tensor([[1, 1, -1]])
    heat, cell, size, offset = heatmap_targets(boxes, classes, 2, (16, 16))
    assert cell[0, :2].tolist() == [[5, 4], [12, 13]]  # floor of the centres (5, 4.5) and (12, 13)
    assert size[0, :2].tolist() == [[6.0, 3.0], [4.0, 6.0]]
    assert offset[0, :2].tolist() == [[0.0, 0.5], [0.0, 0.0]]
    assert not heat[0, 0].any()  # no object of class 0
    assert heat[0, 1, 4, 5] == 1.0 and heat[0, 1, 13, 12] == 1.0 and int((heat >= 1).sum()) == 2
    # one cell right of the first centre: exp(-1 / (2 sigma^2)), sigma = width / 6 = 1
    assert float(heat[0, 1, 4, 6]) == pytest.approx(math.exp(-0.5))
    # one cell below: sigma = height / 6 = 0.5
    assert float(heat[0, 1, 5, 5]) == pytest.approx(math.exp(-1 / (2 * 0.25)))


def test_focal_loss_is_the_papers_formula() -> None:
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    heat = torch.tensor([[[[1.0, 0.5], [0.0, 0.9]]]])
    p = torch.sigmoid(logits)[0, 0]
    expected = -(1 - p[0, 0]) ** 2 * torch.log(p[0, 0])
    for (i, j), y in (((0, 1), 0.5), ((1, 0), 0.0), ((1, 1), 0.9)):
        expected += -((1 - y) ** 4) * p[i, j] ** 2 * torch.log(1 - p[i, j])
    assert float(focal_loss(logits, heat, torch.tensor(1.0))) == pytest.approx(float(expected), rel=1e-5)
    assert float(focal_loss(logits, heat, torch.tensor(2.0))) == pytest.approx(float(expected) / 2, rel=1e-5)


def test_decode_recovers_the_boxes_the_targets_were_made_of() -> None:
    # a perfect network: heatmap logits large at the targets' peaks, sizes and offsets at the centre cells
    boxes = torch.tensor([[[4.3, 2.0, 9.9, 7.5], [1.0, 9.0, 4.0, 15.0], [9.0, 9.0, 15.0, 14.0]]])
    classes = torch.tensor([[0, 2, 2]])
    heat, cell, size, offset = heatmap_targets(boxes, classes, 3, (16, 16))
    output = torch.cat([torch.logit(heat.clamp(1e-4, 1 - 1e-4)), torch.zeros(1, 4, 16, 16)], 1)
    for m in range(3):
        x, y = cell[0, m].tolist()
        output[0, 3:, y, x] = torch.cat([size[0, m], offset[0, m]])
    found = decode(output, (4.0, 2.0))[0]  # 4 input pixels per cell across, 2 down
    strong = found.scores > 0.99
    expected = boxes[0] * torch.tensor([4.0, 2.0, 4.0, 2.0])
    order = found.classes[strong].tolist(), found.boxes[strong]
    assert sorted(order[0]) == [0, 2, 2]
    for box, c in zip(found.boxes[strong], found.classes[strong].tolist(), strict=True):
        match = [m for m in range(3) if classes[0, m] == c and torch.allclose(expected[m], box, atol=1e-4)]
        assert len(match) == 1, (box, expected)


def test_a_layer_table_localizes_when_it_ends_in_classes_plus_four(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    table = "input 3x32x32\nconv 8 3x3 padding=same\nrelu\nmaxpool 2\nflatten\ndense {units}\n"
    short, right = tmp_path / "short.txt", tmp_path / "right.txt"
    short.write_text(table.format(units=6))
    right.write_text(table.format(units=10))
    base = ["train", "--task", "localize", "--image-size", "32", "--epochs", "1", "--precision", "fp32", "--no-report"]
    assert main([*base, "--model", str(short), "--out", str(tmp_path / "a")]) == 2
    assert "ends in 6 outputs, but --task localize on this data needs 10; its last dense layer needs 6 + 4 units" \
        in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # refused before anything is written
    assert main([*base, "--model", str(right), "--out", str(tmp_path / "b"), "--json"]) == 0
    evaluation = _json(capsys)["evaluation"]
    # one epoch of a one-convolution table: boxes better than a box guessed at the image centre (mean IoU ~0.3)
    assert evaluation["mean_iou"] > 0.4 and 0.0 <= evaluation["localization_accuracy"] <= evaluation["accuracy"]


def test_a_wrong_backbone_is_named_not_blamed_on_the_image_size(detect_run: TrainedRun, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    coco = detect_run.folder.parent / "coco"
    assert main(["train", "--task", "detect", "--data", f"coco:{coco}", "--image-size", "64", "--model-options",
                 "backbone=foo", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "backbone='foo' is neither a classification network of the zoo" in err and "--image-size" not in err
    assert not (tmp_path / "run").exists()


def test_a_detector_over_a_run_starts_from_its_trained_weights_and_keeps_them(
        localize_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``backbone=RUN_DIR``: the classifier run's weights start the detector; afterwards they are the detector's own,
    so the backbone run may be deleted and the detector still evaluates to what training reported."""
    import shutil

    from cnnkit import network
    from cnnkit.data.coco import save_coco
    from cnnkit.tasks import make_task

    backbone = tmp_path / "classifier"
    shutil.copytree(localize_run.folder, backbone)
    trained = load_run(backbone).network().state_dict()
    source = network.describe("centernet", (3, 32, 32), 3, make_task("detect"), [f"backbone={backbone}"])
    assert source["backbone"]["source"] == load_run(backbone).card.source and source["kwargs"]["backbone"] == ""
    detector = network.build(source, (3, 32, 32))
    assert not all(torch.equal(v, trained[k]) for k, v in detector.backbone.state_dict().items())  # fresh
    assert network.load_backbone(detector, source) is not None
    for key, value in detector.backbone.state_dict().items():
        assert torch.equal(value, trained[key]), key

    save_coco(load("shapes-det", num_samples=160, image_size=32), tmp_path / "coco")
    out = tmp_path / "detector"
    assert main(["train", "--task", "detect", "--data", f"coco:{tmp_path / 'coco'}", "--image-size", "32",
                 "--model-options", f"backbone={backbone}", "--epochs", "1", "--precision", "fp32", "--out", str(out),
                 "--json", "--no-report"]) == 0
    reported = _json(capsys)["evaluation"]
    card = load_run(out).card
    assert card.source["backbone"]["run"] == str(backbone.resolve())
    shutil.rmtree(backbone)  # the detector's weights file holds the backbone's trained weights now
    assert main(["evaluate", str(out), "--json", "--no-report"]) == 0
    assert _json(capsys)["map"] == reported["map"]

    (tmp_path / "segmenter").mkdir()  # not a run: named as such, exit 2, no traceback
    assert main(["train", "--task", "detect", "--data", "shapes-det", "--model-options",
                 f"backbone={tmp_path / 'segmenter'}", "--epochs", "1", "--out", str(tmp_path / "x")]) == 2
    assert "not a run directory" in capsys.readouterr().err and not (tmp_path / "x").exists()
