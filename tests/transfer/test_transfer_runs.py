"""Transfer runs are ordinary run directories: a digits network for 0-4 reused for 5-9, evaluated, rebuilt, compared."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.data import load
from cnnkit.evaluation import evaluate
from cnnkit.inference import predict_run
from cnnkit.runs import Run
from cnnkit.tasks.outputs import ImagePrediction
from cnnkit.training import resume, train
from cnnkit.transfer import transfer
from cnnkit.transfer.features import fit_sklearn_head

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")

TABLE = """\
input 1x8x8
conv 16 3x3 padding=same
batchnorm
relu
maxpool 2
conv 32 3x3 padding=same
batchnorm
relu
flatten
dense 64
relu
dense 5
"""
COMMON = {"data": "digits", "classes": ["5-9"], "train_per_class": 20, "precision": "fp32", "seed": 2}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network trained by cnnkit on the digits 0-4: the base for 5-9."""
    folder = tmp_path_factory.mktemp("source")
    (folder / "net.txt").write_text(TABLE)
    result = train(model=str(folder / "net.txt"), data="digits", classes=["0-4"], epochs=4, batch_size=32,
                   precision="fp32", out=str(folder / "run"), quiet=True)
    assert result.final["test_accuracy"] > 0.9
    return result.run_dir


def test_extract_run_evaluates_predicts_and_rebuilds(source: Path, tmp_path: Path) -> None:
    result = transfer(base=str(source), strategy="extract", head_epochs=40, lr=1e-2, out=str(tmp_path / "extract"),
                      quiet=True, **COMMON)
    assert result.run_dir is not None and result.accuracy is not None and result.accuracy > 0.7
    # only the new head trains; it reads every block's output, pooled on a 2x2 grid (a 4x4 map) or as it is
    assert result.features == {"layers": ["maxpool1", "flatten1", "relu3"], "shapes": [[16, 4, 4], [512], [64]],
                               "grid": 2, "sizes": [64, 512, 64]}
    assert result.trainable_params == (64 + 512 + 64) * 5 + 5
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["features"] == "maxpool1,flatten1,relu3" and config["feature_grid"] == 2
    # frozen means frozen: every weight and statistic of the base is bit-for-bit the source run's
    trained, original = load_file(str(result.run_dir / "model.safetensors")), load_file(str(source / "model.safetensors"))
    for key, value in original.items():
        if not key.startswith("dense2."):  # the old classifier, replaced
            assert torch.equal(trained[f"network.{key}"], value), key
    # evaluate rebuilds the network from model.json alone and runs every test image through it, whole
    evaluated = evaluate(result.run_dir, figures=False)
    assert evaluated.count == 179 and abs(evaluated.accuracy - result.accuracy) <= 1 / 179
    run = Run.open(result.run_dir)
    model = run.network()
    assert run.card.source["kind"] == "transfer" and run.card.class_names == ("5", "6", "7", "8", "9")
    test = load("digits", classes=["5-9"]).test
    assert test is not None
    image = test.images[:1]
    file = tmp_path / "digit.png"
    Image.fromarray(image[0, 0].numpy()).save(file)
    with torch.no_grad():
        expected = int(model(image.float() / 255).argmax(1))
    (predicted,) = predict_run(result.run_dir, [file], top=1)
    assert isinstance(predicted, ImagePrediction) and predicted.top[0].index == expected
    with pytest.raises(ValueError, match=r"was trained by `cnnkit transfer`.*`--resume` cannot continue"):
        resume(result.run_dir, epochs=9)
    # the taps' hooks are traced into the exported file: ONNX Runtime computes what PyTorch computes
    if importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None:
        from cnnkit.export import export

        exported = export(result.run_dir, "onnx", tmp_path / "extract.onnx")
        assert exported.checked_with == "onnxruntime" and exported.max_rel_diff is not None
        assert exported.max_rel_diff < 1e-4


def test_sklearn_heads_compute_what_scikit_learn_computes() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    splits = load("digits", seed=0)
    assert splits.test is not None
    x = splits.train.images.flatten(1).float()  # the 64 pixels as features: real data, no backbone needed
    y = splits.train.labels
    t = splits.test.images.flatten(1).float()
    references = {"logistic": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000, random_state=0)),
                  "svm": make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=20000, random_state=0)),
                  "knn": KNeighborsClassifier(n_neighbors=5)}
    for kind, reference in references.items():
        head = fit_sklearn_head(kind, x, y, 10, k=5)
        reference.fit(x.double().numpy(), y.numpy())
        with torch.no_grad():
            logits = head(t)
        assert np.array_equal(logits.argmax(1).numpy(), reference.predict(t.double().numpy())), kind
        if kind == "logistic":
            np.testing.assert_allclose(logits.double().softmax(1).numpy(), reference.predict_proba(t.double().numpy()),
                                       atol=1e-4)
        if kind == "knn":
            np.testing.assert_allclose(logits.softmax(1).numpy(), reference.predict_proba(t.double().numpy()), atol=1e-4)


def test_compare_cli_runs_every_strategy_on_one_split(source: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compare"
    code = main(["transfer", "compare", "--base", str(source), "--data", "digits", "--classes", "5-9",
                 "--train-per-class", "20", "--precision", "fp32", "--seed", "2", "--epochs", "3", "--head-epochs", "40",
                 "--lr", "1e-2", "--scratch-epochs", "3", "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["strategy"]: row for row in report["results"]}
    assert list(rows) == ["scratch", "extract", "freeze:2", "finetune"]  # two thirds of the base's 3 blocks frozen
    assert rows["extract"]["trainable_params"] == 640 * 5 + 5 < rows["freeze:2"]["trainable_params"]
    assert rows["finetune"]["trainable_params"] == rows["scratch"]["trainable_params"] == 38_053
    assert all(0 < row["accuracy"] <= 1 and row["seconds"] > 0 for row in rows.values())
    assert report["eval_size"] == 179 and report["train_size"] == 100
    assert json.loads((out / "compare.json").read_text())["results"] == report["results"]
    assert (out / "compare.png").stat().st_size > 10_000
    for name in ("scratch", "extract", "freeze2", "finetune"):
        assert (out / name / "model.safetensors").is_file() and (out / name / "model.json").is_file()


def test_cli_dry_run_prints_the_audit(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transfer", "--base", str(source), "--data", "digits", "--classes", "5-9", "--strategy", "freeze:1",
                 "--batchnorm", "train", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 frozen  conv1 (+batchnorm1, relu1, maxpool1)" in out and "2 trains  conv2 (+batchnorm2, relu2, flatten1)" in out
    assert re.search(r"network.batchnorm1  FrozenBatchNorm2d +32  no +frozen\n", out)  # frozen block: statistics fixed
    assert re.search(r"network.batchnorm2  BatchNorm2d +64  yes +update\n", out)
    assert "no, stats frozen" in out and "nothing was written" in out  # the summary's trainable column
    assert main(["transfer", "--base", str(source), "--data", "digits", "--classes", "5-9", "--strategy", "extract",
                 "--features", "blocks:2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ("the new head reads 576 features, standardised on the training images: the outputs of 2 layers, each "
            "averaged over a 2x2 grid\n  flatten1  512 -> 512\n  relu3     64 -> 64\n") in out
    assert re.search(r"\ntaps +FeatureTaps +0  -\n", out)  # in the audit: no parameters, nothing trains
    assert main(["transfer", "--base", str(source), "--data", "digits", "--strategy", "freeze:9", "--dry-run"]) == 2
    assert "the base network has 3 blocks before its classifier (1:conv1, 2:conv2, 3:dense1); K must be 1 to 3" in capsys.readouterr().err


def test_a_transfer_run_from_the_command_line_has_its_report_and_exports(source: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["transfer", "--base", str(source), "--data", "digits", "--classes", "5-9", "--train-per-class", "20",
                 "--strategy", "extract", "--head-epochs", "20", "--precision", "fp32", "--out", str(out),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["report"]["report"] == str(out / "report.html") and printed["report"]["notes"] == []
    page = (out / "report.html").read_text(encoding="utf-8")
    for anchor in ("confusion", "mistakes", "filters", "feature-maps", "gradcam"):
        assert f'<section id="{anchor}">' in page, anchor
    card = json.loads((out / "model.json").read_text())
    assert card["transform"]["mean"] is None and card["source"]["adapter"]["mean"]  # the adapter normalises
    assert main(["export", str(out), "--format", "torchscript", "--out", str(tmp_path / "model.pt")]) == 0
    said = capsys.readouterr()
    assert said.err == "" and len(said.out.splitlines()) <= 3 and "checked with torch.jit" in said.out
    import torch.jit

    files = {"cnnkit.json": ""}
    torch.jit.load(str(tmp_path / "model.pt"), _extra_files=files)
    meta = json.loads(files["cnnkit.json"])
    assert meta["mean"] == [0.0] and meta["std"] == [1.0]  # never null: the adapter inside does the normalising
