"""Your own network and data from Python: ``cnnkit.train(model=nn.Module, data=(x, y) | Dataset)`` and ``load_run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import cnnkit
from cnnkit.cli import main
from cnnkit.data.given import to_dataset, to_images
from cnnkit.network import module_class
from cnnkit.training import resume

sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="the digits need scikit-learn (cnnkit[data])")


class SmallNet(nn.Module):
    """A user's network for 1x8x8 digits: two convolutions, global pooling, a linear layer."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8) -> (N, classes)
        return self.head(self.features(x).flatten(1))


class NeedsArguments(SmallNet):
    def __init__(self, classes: int) -> None:
        super().__init__(classes)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as floats in [0, 1] ``(N, 8, 8)`` and their classes ``(N,)``."""
    loaded = sklearn_datasets.load_digits()
    return (loaded.images / 16.0).astype(np.float32), loaded.target.astype(np.int64)


@pytest.fixture(scope="module")
def own_run(digits: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> cnnkit.training.TrainResult:
    x, y = digits
    torch.manual_seed(0)
    return cnnkit.train(model=SmallNet(), data=(x[:1400], y[:1400]), test=(x[1400:], y[1400:]), epochs=6, lr=0.02,
                        batch_size=32,
                        out=str(tmp_path_factory.mktemp("own") / "run"), quiet=True)


def _accuracy(model: nn.Module, run: cnnkit.runs.Run, x: np.ndarray, y: np.ndarray) -> float:
    """The network's accuracy on ``x`` computed here: pixels as uint8 as the run stores them, then its transform."""
    images = to_images(x)
    inputs = run.card.batch_transform()(images, train=False)
    with torch.no_grad():
        predicted = model.eval()(inputs).argmax(1)
    return float((predicted == torch.from_numpy(y)).float().mean())


def test_your_own_module_trains_on_arrays_and_evaluates_on_the_test_arrays(
        own_run: cnnkit.training.TrainResult, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    assert own_run.final["test_accuracy"] > 0.8  # 6 epochs of a small network on 8x8 digits
    result = cnnkit.evaluate(own_run.run, figures=False)
    assert result.accuracy == pytest.approx(own_run.final["test_accuracy"], abs=5e-5)  # evaluate rounds to 4 places
    assert result.accuracy == pytest.approx(_accuracy(own_run.model, own_run.run, x[1400:], y[1400:]), abs=5e-5)
    assert (own_run.run_dir / "heldout.safetensors").is_file()


def test_load_run_puts_the_weights_into_the_network_you_give_or_imports_the_class_when_trusted(
        own_run: cnnkit.training.TrainResult, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    expected = own_run.final["test_accuracy"]
    given = cnnkit.load_run(own_run.run_dir, model=SmallNet())
    imported = cnnkit.load_run(own_run.run_dir, trust_code=True)
    assert type(imported.network()) is SmallNet
    for run in (given, imported):
        assert cnnkit.evaluate(run, figures=False).accuracy == pytest.approx(expected, abs=5e-5)
        assert _accuracy(run.network(), run, x[1400:], y[1400:]) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match=r"your own Python class test_given:SmallNet; cnnkit does not import code"):
        cnnkit.load_run(own_run.run_dir).network()
    with pytest.raises(ValueError, match=r"weights belong to another network"):
        cnnkit.load_run(own_run.run_dir, model=SmallNet(classes=3)).network()


def test_predict_and_the_report_work_on_a_run_of_your_own(own_run: cnnkit.training.TrainResult,
                                                          digits: tuple[np.ndarray, np.ndarray],
                                                          tmp_path: Path) -> None:
    from PIL import Image

    x = digits[0]
    image = tmp_path / "digit.png"
    Image.fromarray(np.rint(x[1500] * 255).astype(np.uint8)).save(image)
    run = cnnkit.load_run(own_run.run_dir, model=SmallNet())
    predicted = cnnkit.predict(run, [image], top=1)[0]
    inputs = run.card.batch_transform()(to_images(x[1500:1501]), train=False)
    with torch.no_grad():
        expected = int(run.network()(inputs).argmax(1))
    assert predicted.top[0].name == str(expected)
    report = cnnkit.write_report(run)
    assert report.path.is_file() and "filters" in report.figures


def test_the_cli_says_how_to_open_a_run_of_your_own_class(own_run: cnnkit.training.TrainResult,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(own_run.run_dir)]) == 2
    assert "cnnkit.load_run(" in capsys.readouterr().err
    assert main(["train", "--resume", str(own_run.run_dir)]) == 2
    assert "trained on data given from Python" in capsys.readouterr().err


class _Digits(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """The digits as a map-style Dataset of (1, 8, 8) float tensors and int labels, as torchvision would give them."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.x[i])[None], int(self.y[i])


def test_a_dataset_trains_exactly_as_the_same_arrays(digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = digits
    histories = []
    for name, data in (("arrays", (x[:600], y[:600])), ("dataset", _Digits(x[:600], y[:600]))):
        torch.manual_seed(1)
        result = cnnkit.train(model=SmallNet(), data=data, epochs=2, val_split=0.2, out=str(tmp_path / name),
                              quiet=True)
        histories.append([(r["train_loss"], r["val_accuracy"]) for r in result.history])
    assert histories[0] == histories[1]


def test_text_labels_and_channels_last_uint8_arrays(tmp_path: Path) -> None:
    images = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    images[3:, :, :, 0] = 255  # red images are "red"
    dataset = to_dataset((images, np.array(["blue"] * 3 + ["red"] * 3)), name="mine")
    assert dataset.class_names == ("blue", "red")
    assert dataset.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert dataset.images.shape == (6, 3, 8, 8) and int(dataset.images[3, 0].min()) == 255


@pytest.mark.parametrize(("data", "message"), [
    ((np.full((4, 8, 8), 2.0), np.zeros(4)), r"float pixels must be in \[0, 1\].*values from 2 to 2"),
    ((np.zeros((4, 8, 8)), np.zeros(5)), r"one entry per image \(4\)"),
    ((np.zeros((4, 5, 8, 8)), np.zeros(4)), r"1 or 3 channels"),
    ((np.zeros((4, 8, 8)), np.zeros((4, 8, 8), dtype=np.int64)), r"train with task='segment'"),
    ((np.zeros((4, 8, 8)), np.array([0.5, 1, 2, 3])), r"class indices \(integers\) or class names"),
    ((np.zeros((4, 8, 8), dtype=np.int32) + 300, np.zeros(4)), r"integer pixels must be 0..255"),
])
def test_bad_arrays_are_named(data: tuple[np.ndarray, np.ndarray], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        to_dataset(data, name="mine")


def test_a_network_whose_output_does_not_fit_the_task_is_refused_before_the_run_exists(
        digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = digits
    with pytest.raises(ValueError, match=r"model SmallNet outputs shape \(2, 3\) .* needs \(2, 10\)"):
        cnnkit.train(model=SmallNet(classes=3), data=(x[:100], y[:100]), out=str(tmp_path / "run"), quiet=True)
    with pytest.raises(ValueError, match=r"model Linear cannot take the data's 1x8x8 images"):
        cnnkit.train(model=nn.Linear(3, 10), data=(x[:100], y[:100]), out=str(tmp_path / "run"), quiet=True)
    with pytest.raises(ValueError, match=r"image_size applies to datasets cnnkit reads"):
        cnnkit.train(model=SmallNet(), data=(x[:100], y[:100]), image_size=16, out=str(tmp_path / "run"), quiet=True)
    assert not (tmp_path / "run").exists()


def test_a_zoo_model_trains_on_your_segmentation_arrays(tmp_path: Path) -> None:
    splits = cnnkit.data.load("shapes-seg", num_samples=120, seed=0)
    train, test = splits.train, splits.test
    assert test is not None and train.segmentation is not None and test.segmentation is not None
    result = cnnkit.train(model="unet", model_options=["width=8"], task="segment", data=(train.images, train.segmentation),
                          test=(test.images, test.segmentation), class_names=train.class_names, epochs=1,
                          out=str(tmp_path / "seg"), quiet=True)
    evaluated = cnnkit.evaluate(result.run, figures=False)
    assert evaluated.as_dict()["mean_iou"] == pytest.approx(result.final["test_mean_iou"], abs=5e-5)


def test_resume_continues_a_run_of_your_own_with_the_same_data_given_again(
        digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = digits
    data = (x[:500], y[:500])
    torch.manual_seed(2)
    straight = cnnkit.train(model=SmallNet(), data=data, epochs=2, schedule="constant", out=str(tmp_path / "a"),
                            quiet=True)
    torch.manual_seed(2)
    cnnkit.train(model=SmallNet(), data=data, epochs=1, schedule="constant", out=str(tmp_path / "b"), quiet=True)
    with pytest.raises(ValueError, match=r"continue it from Python with the same data"):
        resume(tmp_path / "b", 2, quiet=True, model=SmallNet())
    resumed = resume(tmp_path / "b", 2, quiet=True, model=SmallNet(), data=data)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in straight.history]


def test_a_class_from_a_script_or_a_missing_module_says_what_to_do() -> None:
    with pytest.raises(ImportError, match=r"defined in the script that trained it \(__main__\)"):
        module_class({"class": "__main__:Net"})
    with pytest.raises(ImportError, match=r"cannot import the run's network class \(ModuleNotFoundError"):
        module_class({"class": "no_such_package.nets:Net"})
    with pytest.raises(ImportError, match=r"is not an nn.Module class"):
        module_class({"class": "os.path:join"})


def test_trusting_a_class_that_needs_arguments_asks_for_the_network(own_run: cnnkit.training.TrainResult,
                                                                     tmp_path: Path) -> None:
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(own_run.run_dir, copy)
    card = json.loads((copy / "model.json").read_text())
    card["source"]["class"] = f"{NeedsArguments.__module__}:NeedsArguments"
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(TypeError, match=r"cannot be called without arguments .* model=NeedsArguments\(\.\.\.\)"):
        cnnkit.load_run(copy, trust_code=True)
    assert cnnkit.evaluate(cnnkit.load_run(copy, model=NeedsArguments(10)), figures=False).accuracy == \
        pytest.approx(own_run.final["test_accuracy"], abs=5e-5)


def test_a_run_naming_a_hostile_module_never_imports_it_unless_trusted(own_run: cnnkit.training.TrainResult,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import shutil

    marker = tmp_path / "imported"
    code = tmp_path / "code"
    code.mkdir()
    (code / "planted_nets.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                          "from torch import nn\nclass Net(nn.Linear):\n    pass\n")
    monkeypatch.syspath_prepend(str(code))
    copy = tmp_path / "run"
    shutil.copytree(own_run.run_dir, copy)
    card = json.loads((copy / "model.json").read_text())
    card["source"]["class"] = "planted_nets:Net"
    (copy / "model.json").write_text(json.dumps(card))
    for command in (["evaluate", str(copy)], ["predict", str(copy), str(copy / "curves.png")], ["export", str(copy)]):
        assert main(command) == 2, command
    assert main(["report", str(copy)]) == 0  # the page, with a note where the network's figures would be
    assert "does not import code a run directory names" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"your own Python class planted_nets:Net"):
        cnnkit.load_run(copy).network()
    assert not marker.exists()
    with pytest.raises(TypeError, match=r"cannot be called without arguments"):  # trusted: imported, then called
        cnnkit.load_run(copy, trust_code=True)
    assert marker.exists()
    capsys.readouterr()
