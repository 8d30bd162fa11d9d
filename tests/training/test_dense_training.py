"""Segmentation, reconstruction and denoising trained for real on small real data, through the CLI and the library."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.data import Noise, dominant_classes, draw_segmentation, load, save_pairs
from cnnkit.data.dataset import TEST_STREAM, split_off
from cnnkit.evaluation import evaluate
from cnnkit.training import resume, train

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_unet_segments_shapes_and_predicts_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # shapes-seg scenes at 16x16, shape against background: small enough to learn in a few dozen steps
    scenes = draw_segmentation(400, (16, 16), seed=0)
    shape = (scenes.segmentation > 0).to(torch.uint8)  # type: ignore[operator]
    scenes = replace(scenes, segmentation=shape, labels=dominant_classes(shape, 2), class_names=("background", "shape"))
    train_set, test_set = split_off(scenes, 0.2, 0, TEST_STREAM, ("scenes/train", "scenes/test"))
    data = tmp_path / "scenes"
    save_pairs(train_set, data / "train")
    save_pairs(test_set, data / "test")
    out = tmp_path / "run"
    assert main(["train", "--task", "segment", "--data", f"folder:{data}", "--image-size", "16", "--model-options",
                 "width=8", "--epochs", "3", "--lr", "0.01", "--precision", "fp32", "--out", str(out), "--json", "--no-report"]) == 0
    result = _json(capsys)
    evaluation = result["evaluation"]
    background = float((test_set.segmentation == 0).float().mean())  # type: ignore[union-attr]
    # all background: IoU `background` for the background, 0 for the shapes
    assert evaluation["mean_iou"] > 0.75 > background / 2 + 0.3, (evaluation["mean_iou"], background)
    assert evaluation["pixel_accuracy"] > background + 0.05 and evaluation["per_class_iou"]["shape"] > 0.5
    assert {"mean_iou", "dice", "pixel_accuracy", "per_class_iou", "per_class", "confusion_matrix"} <= set(evaluation)
    assert sum(map(sum, evaluation["confusion_matrix"])) == 80 * 16 * 16
    assert {"segmentation", "segmentation_mistakes", "confusion_matrix", "metrics"} == set(evaluation["files"])
    assert all(Path(path).stat().st_size > 3000 for name, path in evaluation["files"].items() if name != "metrics")
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"train_loss", "train_pixel_accuracy", "test_loss", "test_pixel_accuracy", "test_mean_iou"} <= set(history[-1])
    assert history[-1]["test_mean_iou"] == pytest.approx(evaluation["mean_iou"], abs=0.02)  # bf16-free: same numbers
    assert main(["evaluate", str(out), "--json"]) == 0
    assert _json(capsys)["mean_iou"] == evaluation["mean_iou"]
    # the report (evaluate refreshes it) gives the task's own figures their sections
    sections = dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', (out / "report.html").read_text(), re.DOTALL))
    for anchor, figure in (("segmentation", "segmentation.png"), ("segmentation-mistakes", "segmentation_mistakes.png"),
                           ("confusion", "confusion_matrix.png")):
        assert f'data-file="{figure}"' in sections[anchor], anchor
    assert "mistakes" not in sections and "more-figures" not in sections
    assert "gradcam" not in sections and "feature-maps" in sections  # no classification placeholders

    files = [str(data / "test" / "images" / f"0000{i}.png") for i in range(4)]
    assert main(["predict", str(out), *files, "--out", str(tmp_path / "masks"), "--json"]) == 0
    predictions = _json(capsys)["predictions"]
    masks = np.stack([np.asarray(Image.open(p["outputs"]["mask"])) for p in predictions])  # class ids
    assert masks.shape == (4, 16, 16) and set(np.unique(masks)) <= {0, 1}
    assert (masks == test_set.segmentation[:4].numpy()).mean() > 0.9  # type: ignore[union-attr]
    assert Image.open(predictions[0]["outputs"]["overlay"]).mode == "RGB"
    assert predictions[0]["classes"][0]["name"] in ("background", "shape")


def test_denoising_autoencoder_removes_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--task", "denoise", "--noise", "gaussian:0.3", "--data", "digits", "--epochs", "8",
                 "--batch-size", "16", "--precision", "fp32", "--out", str(out), "--json", "--no-report"]) == 0
    evaluation = _json(capsys)["evaluation"]
    assert evaluation["psnr"] > evaluation["psnr_noisy"] + 2.5, evaluation  # measured: about +4 dB
    assert evaluation["ssim"] > evaluation["ssim_noisy"] and evaluation["mse"] < evaluation["mse_noisy"]
    assert evaluation["noise"] == "gaussian:0.3" and evaluation["count"] == 359
    assert set(evaluation["files"]) == {"denoising", "metrics"} and Path(evaluation["files"]["denoising"]).is_file()
    model = json.loads((out / "model.json").read_text())
    assert model["task"] == "denoise" and model["source"]["kwargs"]["noise"] == 0.0 and model["transform"]["mean"] is None

    # a noisy picture written as a file a user would have comes back closer to the clean one
    digits = load("digits", seed=0).test
    assert digits is not None
    clean = digits.images[:6].float() / 255
    noisy = Noise("gaussian", 0.3)(clean, torch.Generator().manual_seed(1))
    files = []
    for i in range(6):
        files.append(str(tmp_path / f"noisy{i}.png"))
        Image.fromarray((noisy[i, 0] * 255).round().to(torch.uint8).numpy()).save(files[-1])
    assert main(["predict", str(out), *files]) == 0
    assert "noisy0.png -> " in capsys.readouterr().out
    denoised = torch.stack([torch.from_numpy(np.asarray(Image.open(tmp_path / f"noisy{i}.denoised.png"), dtype=np.float32))
                            for i in range(6)])[:, None] / 255
    assert (denoised - clean).square().mean() < 0.7 * (noisy - clean).square().mean()


def test_denoising_resumes_exactly_and_reconstruction_evaluates(tmp_path: Path) -> None:
    options: dict[str, Any] = {"task": "denoise", "noise": "saltpepper:0.2", "data": "digits", "schedule": "constant",
                               "precision": "fp32", "augment": ["flip"]}
    straight = train(epochs=2, out=str(tmp_path / "straight"), quiet=True, **options)
    train(epochs=1, out=str(tmp_path / "split"), quiet=True, **options)
    resumed = resume(tmp_path / "split", epochs=2, quiet=True)
    a, b = load_file(str(straight.run_dir / "model.safetensors")), load_file(str(resumed.run_dir / "model.safetensors"))
    assert all(torch.equal(a[key], b[key]) for key in a)  # the noise of every batch was drawn again, identically
    assert [r["train_psnr"] for r in straight.history] == [r["train_psnr"] for r in resumed.history]

    run = train(task="reconstruct", data="digits", epochs=1, precision="fp32", out=str(tmp_path / "auto"), quiet=True)
    result = evaluate(run.run_dir).as_dict()
    assert result["task"] == "reconstruct" and {"mse", "psnr", "ssim"} <= set(result) and "psnr_noisy" not in result
    assert result["psnr"] == pytest.approx(run.history[-1]["test_psnr"], abs=0.01)
    assert Path(result["files"]["reconstructions"]).stat().st_size > 3000


def test_a_task_without_fitting_data_or_network_leaves_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    for args, message in ((["--task", "segment", "--data", "digits"], "--task segment needs a dataset with a class per pixel"),
                          (["--task", "segment", "--data", "digits", "--model", "lenet5"], "needs a dataset with a class"),
                          (["--task", "reconstruct", "--data", "digits", "--model", "lenet5"],
                           "a classification network cannot be trained with --task reconstruct"),
                          (["--task", "denoise", "--noise", "gaussian:3", "--data", "digits"],
                           r"standard deviation must be in (0, 1]")):
        assert main(["train", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)
        assert not out.exists()
