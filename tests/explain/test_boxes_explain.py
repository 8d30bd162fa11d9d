"""``cnnkit explain iou`` and ``cnnkit explain nms``: the worked numbers against pixel counts and the detector's NMS."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnkit.cli import main
from cnnkit.evaluation.boxes import nms
from cnnkit.explain import explain_iou, explain_nms


def test_iou_is_the_share_of_pixels_both_boxes_cover() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        corners = rng.integers(0, 40, (2, 4))
        a = (min(corners[0, 0], corners[0, 2]), min(corners[0, 1], corners[0, 3]),
             max(corners[0, 0], corners[0, 2]) + 1, max(corners[0, 1], corners[0, 3]) + 1)
        b = (min(corners[1, 0], corners[1, 2]), min(corners[1, 1], corners[1, 3]),
             max(corners[1, 0], corners[1, 2]) + 1, max(corners[1, 1], corners[1, 3]) + 1)
        masks = np.zeros((2, 41, 41), dtype=bool)
        for mask, (x0, y0, x1, y1) in zip(masks, (a, b), strict=True):
            mask[y0:y1, x0:x1] = True
        union = (masks[0] | masks[1]).sum()
        hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
        c = explain_iou(" ".join(map(str, a)), " ".join(map(str, b)))
        assert c.output["iou"] == pytest.approx((masks[0] & masks[1]).sum() / union, abs=1e-6)
        assert c.output["giou"] == pytest.approx(c.output["iou"] - (hull - union) / hull, abs=1e-6)
        assert c.output["union"] == union and c.extra["agrees_with_box_iou"]


def test_nms_keeps_what_the_detectors_nms_keeps() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        x0, y0 = rng.uniform(0, 50, n), rng.uniform(0, 50, n)
        boxes = np.stack([x0, y0, x0 + rng.uniform(5, 30, n), y0 + rng.uniform(5, 30, n)], 1)
        scores, classes = rng.permutation(n) / n + 0.05, rng.integers(0, 2, n)
        text = "; ".join(f"{' '.join(f'{v:.2f}' for v in b)} {s:.3f} c{c}" for b, s, c in zip(boxes, scores, classes,
                                                                                                strict=True))
        worked = explain_nms(text, 0.3)
        expected = nms(torch.tensor(boxes.round(2)), torch.tensor(scores.round(3)), torch.tensor(classes), 0.3)
        assert worked.output["kept"] == [i + 1 for i in expected.tolist()]


def test_the_worked_example_and_its_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    assert explain_nms().output["kept"] == [1, 4, 3]  # the second cat box and the second dog box go
    assert explain_nms(iou_threshold=0.1).output["kept"] == [1, 4]  # IoU(#1, #3) = 600 / 3400 = 0.18 > 0.1
    assert main(["explain", "nms", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["output"] == {"kept": [1, 4, 3]} and printed["agrees_with_nms"]
    assert main(["explain", "iou", "--a", "10 10 50 60", "--b", "30 30 70 80"]) == 0
    assert "union: A + B - intersection = 2000 + 2000 - 600 = 3400" in capsys.readouterr().out
    for args, message in ((["iou", "--a", "5 5 1 1", "--b", "0 0 1 1"], "--a must be four numbers x0 y0 x1 y1"),
                          (["nms", "--boxes", "1 2 3 4 x"], "the score must be a number"),
                          (["nms", "--iou", "2"], "--iou must be between 0 and 1")):
        assert main(["explain", *args]) == 2
        assert message in capsys.readouterr().err


def test_tied_scores_keep_the_earlier_box_in_both() -> None:
    tied = "; ".join(f"{i} 0 {i + 10} 10 0.5 cat" for i in range(40))  # 40 equal scores, each overlapping the next
    worked = explain_nms(tied)
    assert worked.extra["agrees_with_nms"] and worked.output["kept"][0] == 1
