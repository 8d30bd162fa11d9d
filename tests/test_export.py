"""Export to ONNX (checked with ONNX Runtime) and TorchScript: every zoo classifier, a trained run, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit import models
from cnnkit.cli import main
from cnnkit.export import export, export_model, run_exported
from tests.conftest import DIGITS_CLASSES, TrainedRun

onnx = pytest.importorskip("onnx", reason="ONNX export needs the export extra (pip install cnnkit[export])")
pytest.importorskip("onnxruntime", reason="checking ONNX files needs onnxruntime (pip install cnnkit[export])")

# (H, W) to export at: the smallest that keeps each network's layers meaningful, so the file stays fast.
SMALL = {"lenet5": None, "keras_example": None, "resnet_small": None, "vgg_small": None, "fastnet": None,
         "plain_deep": None, "residual_deep": None,
         "mobilenet_v1": (32, 32), "efficientnet_lite0": (32, 32), "efficientnet_lite1": (32, 32),
         "efficientnet_lite2": (32, 32), "resnet18": (32, 32), "resnet34": (32, 32),
         "resnet50": (32, 32)}
# 60-140 M parameters, almost all in the dense layers; their adaptive pool must not upsample (1x1 -> 7x7), which
# the TorchScript-based exporter rejects, so they go at the 224x224 they were designed for
BIG = ("alexnet", "vgg11", "vgg16", "vgg16_bn")


def _shape(name: str, size: tuple[int, int] | None) -> tuple[int, int, int]:
    channels, height, width = models.info(name).input_shape
    return (channels, *(size or (height, width)))


def _calibrated(name: str, shape: tuple[int, int, int]) -> torch.nn.Module:
    """A fresh network whose batch-norm statistics come from one batch, as after training.

    With the initial statistics (mean 0, variance 1) deep networks such as
    MobileNet shrink every input to the same output in eval mode, and a
    comparison of two constant outputs would prove nothing.
    """
    torch.manual_seed(0)
    model = models.create(name)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.momentum = None  # running statistics = this batch's
    if norms:  # enough images that the last, smallest feature maps still give each channel a spread of values
        with torch.no_grad():
            model.train()(torch.randn(16 if shape[1] < 100 else 4, *shape))
    return model.eval()


def test_every_zoo_classifier_is_covered() -> None:
    classifiers = {n for n in models.names() if models.info(n).kind == "classification"}
    assert classifiers == set(SMALL) | set(BIG), "add the new classifier to SMALL or BIG"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_classifiers_match_pytorch_through_onnx_runtime(name: str, tmp_path: Path) -> None:
    shape = _shape(name, SMALL[name])
    model = _calibrated(name, shape)
    result = export_model(model, shape, tmp_path / f"{name}.onnx", "onnx")
    assert result.checked_with == "onnxruntime" and result.max_rel_diff is not None and result.max_rel_diff < 1e-3
    # beyond the built-in check: a third batch size, and real structure (images that differ give outputs that differ)
    images = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    got = run_exported(result.path, images)
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * max(1.0, float(expected.abs().max())))
    assert got.shape == (5, models.info(name).num_classes) and (got[0] - got[1]).abs().max() > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_big_classifiers_match_pytorch_through_onnx_runtime(name: str, tmp_path: Path) -> None:
    result = export_model(_calibrated(name, _shape(name, None)), _shape(name, None), tmp_path / f"{name}.onnx", "onnx")
    assert result.max_rel_diff is not None and result.max_rel_diff < 1e-3
    assert result.size_bytes > 0.99 * 4 * models.num_parameters(name)  # the float32 weights are in the file


@pytest.mark.parametrize("name", ["lenet5", "resnet_small", "mobilenet_v1"])
def test_torchscript_matches_pytorch(name: str, tmp_path: Path) -> None:
    shape = _shape(name, SMALL[name])
    model = _calibrated(name, shape)
    result = export_model(model, shape, tmp_path / f"{name}.pt", "torchscript", metadata={"class_names": ["a"]})
    assert result.checked_with == "torch.jit" and result.max_rel_diff is not None and result.max_rel_diff < 1e-3
    files = {"cnnkit.json": ""}
    torch.jit.load(str(result.path), _extra_files=files)
    assert json.loads(files["cnnkit.json"]) == {"input_shape": list(shape), "class_names": ["a"]}


def test_a_trained_run_exports_with_its_preprocessing(digits_run: TrainedRun, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.data import load as load_data
    from cnnkit.runs import Run

    run, onnx_file, script_file = digits_run.folder, tmp_path / "digits.onnx", tmp_path / "digits.pt"
    assert main(["export", str(run), "--format", "onnx", "--out", str(onnx_file), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["path"] == str(onnx_file) and printed["max_abs_diff"] < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    opened = Run.open(run)
    model, card = opened.network(), opened.card
    assert json.loads(meta["class_names"]) == ["5", "6", "7", "8", "9"] == list(card.class_names)
    assert json.loads(meta["mean"]) == card.transform["mean"] and meta["fit"] == "crop" and meta["task"] == "classify"
    assert meta["output"] == "(N, 5) per image: class scores (logits); softmax gives probabilities"
    # the exported file classifies real test images exactly as the run's network does
    test = load_data("digits", classes=[DIGITS_CLASSES]).test
    assert test is not None
    x = card.batch_transform()(test.images[:64], train=False)
    with torch.no_grad():
        expected = model(x)
    got = run_exported(onnx_file, x)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert main(["export", str(run), "--format", "torchscript", "--out", str(script_file)]) == 0
    assert "checked with torch.jit" in capsys.readouterr().out
    torch.testing.assert_close(run_exported(script_file, x), expected, rtol=1e-4, atol=1e-5)


def test_a_detection_run_exports_its_raw_heads_and_the_decoding_gives_the_same_objects(
        detect_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.runs import Run
    from cnnkit.tasks.detect import decode

    onnx_file = tmp_path / "detect.onnx"
    assert main(["export", str(detect_run.folder), "--format", "onnx", "--out", str(onnx_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_diff"] < 1e-3
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert meta["task"] == "detect" and meta["output"].startswith("(N, 10x8x8) per image: K heatmap logits")
    opened = Run.open(detect_run.folder)
    images = sorted((detect_run.folder.parent / "coco" / "test" / "images").iterdir())[:16]
    pixels = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in images])
    x = opened.card.prep().normalise(pixels)
    with torch.no_grad():
        expected = opened.network()(x)
    got = run_exported(onnx_file, x)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    for ours, theirs in zip(decode(expected, (4.0, 4.0)), decode(got, (4.0, 4.0)), strict=True):
        strong = ours.scores >= 0.3
        assert torch.equal(ours.classes[strong], theirs.classes[: int(strong.sum())])
        torch.testing.assert_close(ours.boxes[strong], theirs.boxes[: int(strong.sum())], rtol=1e-3, atol=1e-3)


def test_an_instance_run_exports_its_heads_and_mask_features(instance_run: TrainedRun, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    onnx_file = tmp_path / "instance.onnx"
    assert main(["export", str(instance_run.folder), "--format", "onnx", "--out", str(onnx_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_diff"] < 1e-3
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert meta["task"] == "instance" and meta["output"].startswith("(N, 115x8x8) per image")


class _BatchOfOneDoubles(torch.nn.Module):
    """Doubles its output for a batch of one: a trace made with one image bakes the factor 2 into the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * (2 if x.shape[0] == 1 else 1)


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_export_that_differs_from_pytorch_is_refused(format: str, tmp_path: Path) -> None:
    path = tmp_path / f"m.{format}"
    with pytest.raises(ValueError, match=r"m\.\w+: the exported model differs from PyTorch by .* the file was not written"):
        export_model(_BatchOfOneDoubles(), (1, 2, 2), path, format)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    assert export_model(_BatchOfOneDoubles(), (1, 2, 2), path, format, check=False).max_abs_diff is None


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "not a run directory (no such folder)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"--format must be one of onnx, torchscript\. Received: 'tflite'"):
        export(tmp_path, "tflite")
    with pytest.raises(ValueError, match=r"--tolerance must be positive\. Received: 0"):
        export_model(models.create("vgg_small"), (1, 28, 28), tmp_path / "m.onnx", tolerance=0)
    assert not (tmp_path / "m.onnx").exists()
