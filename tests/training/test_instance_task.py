"""Instance segmentation: the dynamic mask head by hand, and a trained run's mask AP recomputed by pycocotools from
the files it writes, its predictions' masks in the image file's own pixels."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.models.centernet import MASK_FEATURES, MASK_HIDDEN, MASK_PARAMS
from cnnkit.runs import load_run
from cnnkit.tasks.instance import Instance, dynamic_masks, mask_boxes
from tests.conftest import TrainedRun

pytest.importorskip("pycocotools", reason="mask AP is computed by pycocotools")


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_mask_boxes_are_the_masks_extent() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 4, 9, 11)) > 0.97
    masks[0, 0] = False
    boxes = mask_boxes(torch.from_numpy(masks)).numpy()
    for i in range(3):
        for j in range(4):
            ys, xs = np.nonzero(masks[i, j])
            expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0]
            assert boxes[i, j].tolist() == expected


def test_the_dynamic_head_is_two_layers_run_at_every_pixel() -> None:
    torch.manual_seed(0)
    params, features = torch.randn(2, MASK_PARAMS), torch.randn(2, MASK_FEATURES, 6, 8)
    centres = torch.tensor([[3.0, 2.5], [6.5, 4.0]])
    got = dynamic_masks(params, features, centres)
    c, hidden = MASK_FEATURES + 2, MASK_HIDDEN
    for d in range(2):
        w1 = params[d, :c * hidden].reshape(hidden, c).numpy()
        b1 = params[d, c * hidden:c * hidden + hidden].numpy()
        w2, b2 = params[d, c * hidden + hidden:-1].numpy(), float(params[d, -1])
        for y in range(6):
            for x in range(8):
                rel = [(x + 0.5 - float(centres[d, 0])) / 2.0, (y + 0.5 - float(centres[d, 1])) / 2.0]  # 8 / 4
                inputs = np.concatenate([features[d, :, y, x].numpy(), rel])
                expected = w2 @ np.maximum(w1 @ inputs + b1, 0) + b2
                assert float(got[d, y, x]) == pytest.approx(float(expected), abs=1e-4)


def test_mask_ap_is_pycocotools_on_the_written_files(instance_run: TrainedRun) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    evaluation = instance_run.output["evaluation"]
    files = evaluation["files"]
    for kind, keys in (("segm", ("mask_map", "mask_map50", "mask_map75")), ("bbox", ("box_map", "box_map50",
                                                                                   "box_map75"))):
        with contextlib.redirect_stdout(io.StringIO()):
            truth = COCO(files["coco_ground_truth"])
            check = COCOeval(truth, truth.loadRes(files["coco_detections"]), kind)
            check.evaluate()
            check.accumulate()
            check.summarize()
        assert tuple(evaluation[k] for k in keys) == pytest.approx(tuple(check.stats[:3]), abs=1e-4)
    # three epochs on 480 scenes of 32x32 make masks that overlap the objects (untrained: mask AP about 0)
    assert evaluation["mask_map50"] > 0.03 and evaluation["box_map50"] > 0.03, evaluation
    written = json.loads((instance_run.folder.parent / "coco" / "test" / "annotations.json").read_text())
    assert evaluation["objects"] == len(written["annotations"])
    assert main(["evaluate", str(instance_run.folder), "--json", "--no-report"]) == 0


def test_predicted_masks_are_the_networks_in_the_files_pixels(instance_run: TrainedRun, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    image = sorted((instance_run.folder.parent / "coco" / "test" / "images").iterdir())[0]
    assert main(["predict", str(instance_run.folder), str(image), "--json", "--out", str(tmp_path)]) == 0
    objects = _json(capsys)["predictions"][0]["objects"]
    run = load_run(instance_run.folder)
    pixels = torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1)[None]
    with torch.inference_mode():
        output = run.network().eval()(run.card.prep().normalise(pixels))
    task = Instance()
    found = task.decode(output, (4.0, 4.0))[0]
    keep = found.scores >= 0.3
    assert len(objects) == int(keep.sum())
    masks = task.masks(output, [type(found)(found.boxes[keep], found.scores[keep], found.classes[keep],
                                           found.cells[keep] if found.cells is not None else None)])[0]
    for obj, mask in zip(objects, masks, strict=True):
        written = np.array(Image.open(obj["mask"])) > 0
        assert written.shape == (32, 32) and (written == mask.numpy()).mean() > 0.98  # resized to the same size
    big = tmp_path / "big.png"
    Image.open(image).resize((96, 64), Image.Resampling.NEAREST).save(big)
    assert main(["predict", str(instance_run.folder), str(big), "--json", "--out", str(tmp_path)]) == 0
    for obj in _json(capsys)["predictions"][0]["objects"]:
        assert np.array(Image.open(obj["mask"])).shape == (64, 96)  # each mask in the file's own pixels
