"""One run, one task, one way in: a file is read for prediction exactly as training read it; readers of a run see
the run's own data; the run directory, the resolver and the import boundaries hold."""

from __future__ import annotations

import ast
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data.spec import DataSpec
from cnnkit.images import ImagePrep, read_pixels
from cnnkit.inference import predict_run
from cnnkit.resolve import resolve
from cnnkit.runs import ModelCard, Run
from cnnkit.tasks.outputs import ImagePrediction
from cnnkit.training import Callback, TrainState, train
from tests.conftest import DIGITS_CLASSES, TrainedRun

PACKAGE = Path(__file__).resolve().parents[1] / "cnnkit"
PHOTO_NET = "input 3x16x16\nconv 4 3x3 padding=same\nrelu\nmaxpool 2\nflatten\ndense 2\n"


def _banded_photos(root: Path) -> list[Path]:
    """80x40 photos, two classes, each with a white band 15 pixels wide on its left edge."""
    rng = np.random.default_rng(0)
    files = []
    for name, level in (("dark", 40), ("light", 200)):
        (root / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 60, (40, 80, 3), dtype=np.uint8) + np.uint8(level // 2)
            pixels[:, :15] = 255  # the band: outside the centre square that training crops to
            Image.fromarray(pixels).save(root / name / f"{i}.png")
            files.append(root / name / f"{i}.png")
    return files


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("photos")
    files = _banded_photos(folder / "photos")
    (folder / "net.txt").write_text(PHOTO_NET)
    train(model=str(folder / "net.txt"), data=f"folder:{folder / 'photos'}", image_size=16, epochs=1, batch_size=4,
          precision="fp32", out=str(folder / "run"), quiet=True)
    return folder / "run", files


def test_predict_reads_a_file_exactly_as_training_read_it(photo_run: tuple[Path, list[Path]]) -> None:
    folder, files = photo_run
    run = Run.open(folder)
    training = run.data().load().train.images  # (12, 3, 16, 16) uint8, in file order
    transform = run.card.batch_transform()
    model = run.network()
    for index in (0, 7):
        expected = transform(training[index : index + 1], train=False)  # what training fed the network
        assert torch.equal(run.input_from_file(files[index]), expected[0])
        (prediction,) = predict_run(folder, [files[index]], top=2)
        assert isinstance(prediction, ImagePrediction)
        with torch.no_grad():
            probs = model(expected).softmax(1)[0]
        assert [s.index for s in prediction.top] == probs.argsort(descending=True).tolist()
        assert prediction.top[0].prob == pytest.approx(float(probs.max()), abs=1e-6)
    # the white band is cut away, as the centre crop of training cut it; stretching would keep it (0.96)
    pixels = read_pixels(files[0], run.card.prep())
    assert float(pixels[:, :, :3].float().mean()) / 255 < 0.5
    stretched = read_pixels(files[0], ImagePrep((3, 16, 16), "stretch"))
    assert float(stretched[:, :, :3].float().mean()) / 255 > 0.95
    # visualize's subject reads it the same way
    from cnnkit.visualize import resolve as subject_of

    x, _ = subject_of(folder).load(files[0])
    assert torch.equal(x[0], transform(training[:1], train=False)[0])


def test_a_run_records_its_data_and_how_it_reads_files(photo_run: tuple[Path, list[Path]]) -> None:
    card = json.loads((photo_run[0] / "model.json").read_text())
    assert card["image"] == {"fit": "crop", "interpolation": "bilinear"}
    assert card["data"]["name"].startswith("folder:") and card["data"]["image_size"] == 16
    assert card["task"] == "classify" and card["class_names"] == ["dark", "light"]


def test_a_run_written_before_the_card_recorded_its_data_still_opens(digits_run: TrainedRun, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(digits_run.folder, folder)
    card = json.loads((folder / "model.json").read_text())
    card.pop("image")
    card["data"] = "digits"  # the old card named the dataset only; config.json held the rest
    (folder / "model.json").write_text(json.dumps(card))
    run = Run.open(folder)
    assert run.card.data == DataSpec("digits", classes=(DIGITS_CLASSES,))
    assert run.card.prep().fit == "crop"
    held_out, split = run.held_out()
    assert split == "test" and held_out.class_names == ("5", "6", "7", "8", "9")


def test_readers_see_the_run_s_own_classes(digits_run: TrainedRun) -> None:
    from cnnkit.data import load

    run = Run.open(digits_run.folder)
    held_out, split = run.held_out()
    own = load("digits", classes=[DIGITS_CLASSES]).test
    assert own is not None and split == "test"
    assert torch.equal(held_out.images, own.images) and torch.equal(held_out.labels, own.labels)
    assert digits_run.output["evaluation"]["count"] == len(own)  # evaluate read the same split
    with pytest.raises(ValueError, match=r"--data digits: its classes \['0', '1', '2', '3'\]\.\.\. and image shape "
                                         r"\[1, 8, 8\] differ from the run's \['5', '6', '7', '8'\]"):
        run.held_out("digits")  # the whole dataset: ten classes, not the run's five


@pytest.mark.parametrize("sample", [0, 3, 11])
def test_the_report_shows_the_image_of_the_run_s_own_split(digits_run: TrainedRun, tmp_path: Path,
                                                          sample: int) -> None:
    from cnnkit.data import load
    from cnnkit.report import write_report

    folder = tmp_path / "run"
    shutil.copytree(digits_run.folder, folder)
    page = write_report(folder, sample=sample).path.read_text(encoding="utf-8")
    test = load("digits", classes=[DIGITS_CLASSES]).test
    assert test is not None
    truth = test.class_names[int(test.labels[sample])]
    assert html.escape(f"test image #{sample}, true class {truth!r}") in page
    # the shared net flattens its maps into a dense layer: the Grad-CAM section says to read it with care
    assert html.escape("Read this heat map with care: the network flattens its maps into dense layers") in page


def test_a_card_for_another_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"not a run directory of `cnnkit train` \(no model.json\)"):
        Run.open(tmp_path)
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"model.json: the file must be a JSON object. Received: list"):
        Run.open(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"source": {"kind": "zoo", "name": "lenet5", "kwargs": {}},
                                                     "input_shape": [1, 8], "class_names": [], "transform": {}}))
    with pytest.raises(ValueError, match=r"model.json: `input_shape` must be \[C, H, W\] .*Received: \[1, 8\]"):
        Run.open(tmp_path)


def test_create_refuses_a_full_folder_and_removes_a_failed_start(tmp_path: Path) -> None:
    card = ModelCard("classify", {"kind": "zoo", "name": "lenet5", "kwargs": {}}, (1, 28, 28), ("a",), {})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(ValueError, match=r"--out .*full: the directory exists and is not empty"), \
            Run.create(tmp_path / "full", card, {}):
        pass
    assert (tmp_path / "full" / "x").read_text() == "mine"
    with pytest.raises(RuntimeError, match="boom"), Run.create(tmp_path / "new", card, {"epochs": 1}) as run:
        assert (run.folder / "model.json").is_file()
        raise RuntimeError("boom")
    assert not (tmp_path / "new").exists()


def test_one_resolver_with_one_precedence(digits_run: TrainedRun, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(digits_run.folder).kind == "run"
    assert resolve("lenet5").kind == "zoo" and resolve("lenet_slides").kind == "table"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet5.txt").write_text("input 1x8x8\nflatten\ndense 2\n")
    found = resolve("lenet5.txt")
    assert (found.kind, found.name) == ("table", "lenet5") and found.table().output_shape == (2,)
    with pytest.raises(ValueError, match=r"TARGET 'lenet' is not .*Did you mean lenet5"):
        resolve("lenet")
    with pytest.raises(ValueError, match=r"--base lenet_slides: a layer-table file or a shipped table, but --base takes "
                                         r"a run directory or a zoo model"):
        resolve("lenet_slides", accept=("run", "zoo"), flag="--base")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match=r"a folder but not a run directory"):
        resolve("plain")


class _Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_fit_start(self, state: TrainState) -> None:
        self.events.append(f"start {state.epoch}")

    def on_epoch_end(self, state: TrainState, record: dict[str, object]) -> None:
        self.events.append(f"epoch {record['epoch']} {record['test_accuracy']:.3f}")

    def on_fit_end(self, state: TrainState) -> None:
        self.events.append("end")


def test_train_calls_the_user_s_callbacks(digits_net: Path, tmp_path: Path) -> None:
    recorder = _Recorder()
    result = train(model=str(digits_net), data="digits", classes=[DIGITS_CLASSES], epochs=2, batch_size=64,
                   precision="fp32", out=str(tmp_path / "run"), quiet=True, callbacks=[recorder])
    accuracies = [f"{r['test_accuracy']:.3f}" for r in result.history]
    assert recorder.events == ["start 0", f"epoch 1 {accuracies[0]}", f"epoch 2 {accuracies[1]}", "end"]


@pytest.mark.parametrize("module", ["cnnkit.visualize", "cnnkit.evaluation", "cnnkit.report", "cnnkit.export",
                                    "cnnkit.inference", "cnnkit.runs", "cnnkit.tasks", "cnnkit.transfer.net"])
def test_readers_of_a_run_do_not_import_training(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('cnnkit.training')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def _code_strings(path: Path) -> list[str]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_one_module_names_the_model_card_and_two_places_load_data() -> None:
    naming = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "model.json" in _code_strings(p))
    assert naming == ["runs.py"]
    loading = re.compile(r"\b(data|datasets)\.load\(|from cnnkit\.data(\.catalog)? import [^\n]*\bload\b")
    callers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if p.parent.name != "data" and loading.search(p.read_text(encoding="utf-8")))
    assert len(callers) <= 2, callers


def test_predict_takes_a_folder_and_predicts_every_image_in_it(photo_run: tuple[Path, list[Path]], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.cli import main

    folder, files = photo_run
    photos = files[0].parent.parent  # dark/ and light/, six images each
    (photos / "dark" / "README.txt").write_text("not an image")
    assert main(["predict", str(folder), str(photos), "--top", "1", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["file"] for p in predicted] == [str(f) for f in sorted(files)]
    one = predict_run(folder, [files[3]], top=1)[0]
    assert isinstance(one, ImagePrediction) and predicted[3]["top"][0]["class"] == one.top[0].index
    (photos / "dark" / "README.txt").unlink()
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(folder), str(tmp_path / "empty")]) == 2
    assert "a folder without image files" in capsys.readouterr().err


def test_the_mistakes_figure_says_which_images_to_look_at(digits_run: TrainedRun) -> None:
    mistakes = digits_run.output["evaluation"]["mistakes"]
    run = Run.open(digits_run.folder)
    held_out, _ = run.held_out()
    with torch.no_grad():
        logits = run.network()(run.card.batch_transform()(held_out.images, train=False))
    confidence, predicted = logits.softmax(1).max(1)
    wrong = (predicted != held_out.labels).nonzero().flatten()
    expected = wrong[confidence[wrong].argsort(descending=True)][:24].tolist()  # the most confident first
    assert [m["index"] for m in mistakes] == expected and all(m["file"] is None for m in mistakes)  # digits: no files
