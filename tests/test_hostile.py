"""Hostile inputs: damaged or malicious run directories, special files, tables that would need terabytes.

Every case ends in one line naming the file or the layer, exit status 2, and
nothing written outside the folders the command was given.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from tests.conftest import TrainedRun

Edit = Callable[[Path], None]


def _card(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "model.json").read_text())


def _write_card(folder: Path, card: Any) -> None:
    (folder / "model.json").write_text(json.dumps(card))


def _set(field: str, value: Any) -> Edit:
    def edit(folder: Path) -> None:
        card = _card(folder)
        target = card
        *path, last = field.split(".")
        for key in path:
            target = target[key]
        target[last] = value
        _write_card(folder, card)
    return edit


def _replace_file(name: str, text: str) -> Edit:
    def edit(folder: Path) -> None:
        (folder / name).write_text(text)
    return edit


def _weights_only_checkpoint(folder: Path) -> None:
    state = torch.load(folder / "checkpoint" / "state.pt", weights_only=True)
    torch.save({"model": state["model"]}, folder / "checkpoint" / "state.pt")


def _linked_out(name: str) -> Edit:
    """``RUN/name`` moved outside the run and replaced by a symbolic link to it: a run from someone else."""
    def edit(folder: Path) -> None:
        outside = folder.parent / f"outside-{Path(name).name}"
        (folder / name).rename(outside)
        (folder / name).symlink_to(outside)
    return edit


def _both(*edits: Edit) -> Edit:
    def edit(folder: Path) -> None:
        for each in edits:
            each(folder)
    return edit


def _deep_json(folder: Path) -> None:
    (folder / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)


# (what the tester did, the edit, the command's words after RUN, what the one line must say)
CASES: list[tuple[str, Edit, list[str], str]] = [
    ("model.json is a list", _replace_file("model.json", "[1, 2, 3]"), ["evaluate"],
     "model.json: the file must be a JSON object. Received: list"),
    ("model.json is a string", _replace_file("model.json", '"lenet5"'), ["report"],
     "model.json: the file must be a JSON object. Received: str"),
    ("model.json is not JSON", _replace_file("model.json", "{"), ["evaluate"], "model.json: not valid JSON"),
    ("fewer class names than outputs", _set("class_names", ["5", "6", "7"]), ["evaluate"],
     "the network outputs 5 per image, but the run's task and classes need 3"),
    ("a huge input shape", _set("input_shape", [1, 100000, 100000]), ["evaluate"],
     "`input_shape` must be [C, H, W] with C in [1, 3] and sides from 1 to 8192"),
    ("a task that does not match the network", _set("task", "segment"), ["evaluate"],
     "the network outputs 5 per image, but the run's task and classes need 5x8x8"),
    ("an unknown task", _set("task", "caption"), ["evaluate"], "`task` must be one of 'classify', 'segment'"),
    ("a source name that is a path", _set("source.name", "../../../escaped"), ["report"],
     "`source.name` must be a plain name"),
    ("an absolute source name", _set("source.name", "/tmp/escaped"), ["evaluate"], "`source.name` must be a plain name"),
    ("a source of no known kind", _set("source.kind", "pickle"), ["evaluate"],
     "`source.kind` must be one of 'zoo', 'table', 'transfer'"),
    ("a table as long as a book", _set("source.text", "x" * (1 << 21)), ["evaluate"],
     "`source.text` must be text of at most 1,048,576 characters"),
    ("config.json is a list", _replace_file("config.json", "[]"), ["evaluate"],
     "config.json: the file must be a JSON object. Received: list"),
    ("a zero std", _both(_set("std", [0]), _set("transform.std", [0])), ["predict", "DIGIT"], "every `std` must be > 0"),
    ("a std that is not the one used", _set("std", [0]), ["predict", "DIGIT"], "`std` [0] differs from `transform.std`"),
    ("more class names than outputs, and --top above both", _set("class_names", [str(n) for n in range(20)]),
     ["predict", "DIGIT", "--top", "15"], "the network outputs 5 per image, but the run's task and classes need 20"),
    ("a bogus task beside an image", _set("task", "bogus"), ["predict", "DIGIT"], "`task` must be one of"),
    ("metrics.json nested 100,000 deep", _deep_json, ["report"], "metrics.json: not valid JSON (nested deeper than this reader follows"),
    ("the weights a link to a file outside", _linked_out("model.safetensors"), ["evaluate"],
     "model.safetensors: a symbolic link (to "),
    ("the model card a link to a file outside", _linked_out("model.json"), ["predict", "DIGIT"],
     "model.json: a symbolic link (to "),
    ("the checkpoint a link to a file outside", _linked_out("checkpoint/state.pt"), ["train", "--resume"],
     "state.pt: a symbolic link (to "),
    ("a checkpoint holding only weights", _weights_only_checkpoint, ["train", "--resume"],
     "not a whole cnnkit checkpoint: no 'optimizer' (a weights-only file cannot be resumed)"),
]


def _snapshot(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, float]]:
    found = {}
    for path in root.rglob("*"):
        if any(path == s or s in path.parents for s in skip):
            continue
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime)
    return found


@pytest.mark.parametrize(("what", "edit", "words", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_damaged_run_is_one_line_and_writes_nothing(what: str, edit: Edit, words: list[str], message: str,
                                                      digits_run: TrainedRun, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "root" / "runs" / "hostile"
    shutil.copytree(digits_run.folder, run)
    edit(run)
    image = tmp_path / "root" / "digit.png"
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(image)
    monkeypatch.chdir(tmp_path / "root")
    before = _snapshot(tmp_path, ())
    words = [str(image) if word == "DIGIT" else word for word in words]
    command = [words[0], *words[1:], str(run)] if words[0] == "train" else [words[0], str(run), *words[1:]]
    assert main(command) == 2, what
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and err.count("\n") == 1 and message in err, (what, err)
    assert _snapshot(tmp_path, ()) == before, what  # nothing written, not even inside the run


def test_no_command_writes_outside_the_run_and_its_out_folders(digits_run: TrainedRun, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Every command on a run whose files name paths outside it: writes stay in the run and the --out folders."""
    root = tmp_path / "root"
    run, out = root / "runs" / "shared", root / "out"
    shutil.copytree(digits_run.folder, run)
    out.mkdir(parents=True)
    card = _card(run)
    card["skipped_files"] = ["/etc/passwd", "../../outside.png"]
    _write_card(run, card)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["files"]["confusion_matrix"] = "/etc/hostname.png"  # the report must not embed a file from elsewhere
    (run / "metrics.json").write_text(json.dumps(metrics))
    image = root / "images" / "digit.png"
    image.parent.mkdir()
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(image)
    monkeypatch.chdir(root)
    before = _snapshot(tmp_path, (run, out))
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()  # only files inside the run are embedded: this one is "missing"
    assert 'data-file="hostname.png"' not in page and "/etc/hostname.png is listed in metrics.json but missing" in page
    commands = [["evaluate", str(run)], ["predict", str(run), str(image)],
                ["export", str(run), "--format", "torchscript", "--out", str(out / "model.pt")],
                ["visualize", "filters", str(run), "--out", str(out / "filters.png")],
                ["visualize", "feature-maps", str(run), "--image", str(image), "--out", str(out / "maps.png")],
                ["summary", str(run)]]
    for command in commands:
        assert main(command) == 0, command
    capsys.readouterr()
    assert _snapshot(tmp_path, (run, out)) == before


def test_a_report_holds_nothing_from_outside_the_run(digits_run: TrainedRun, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Links inside the run and absolute paths in metrics.json: report.html (meant to be mailed) embeds none."""
    run = tmp_path / "run"
    shutil.copytree(digits_run.folder, run)
    secret_text = tmp_path / "secret.txt"
    secret_text.write_text("the password is swordfish\n")
    secret_png = tmp_path / "secret.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(secret_png)
    for name, target in [("mistakes.png", secret_png), ("summary.txt", secret_text), ("metrics.jsonl", secret_text),
                         ("gradcam.png", secret_text)]:
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(target)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["files"]["confusion_matrix"] = str(secret_png)
    metrics["files"]["extra"] = str(secret_png)
    (run / "confusion_matrix.png").unlink()
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["report", str(run)]) == 0
    capsys.readouterr()
    page = html.unescape((run / "report.html").read_text())
    for secret in (secret_png.read_bytes(), secret_text.read_bytes()):
        assert base64.b64encode(secret).decode() not in page
    assert "swordfish" not in page
    assert "mistakes.png is a symbolic link; only the run's own files are embedded" in page
    assert "summary.txt is missing, a link to a file outside the run, or too large to show" in page
    assert 'data-file="curves.png"' not in page and "metrics.jsonl: a symbolic link" in page
    assert 'data-file="filters.png"' in page  # the run's own figures are still there


def test_special_files_are_refused_not_read(digits_run: TrainedRun, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # reading it would block forever
    assert main(["predict", str(digits_run.folder), str(fifo)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read image {str(fifo)!r}: a named pipe, not a regular file" in err
    assert main(["visualize", "feature-maps", "lenet_slides", "--image", str(fifo), "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "a named pipe, not a regular file" in capsys.readouterr().err
    for name in ("a", "b"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "photos" / name / "ok.png")
    os.mkfifo(tmp_path / "photos" / "a" / "stuck.png")
    from cnnkit.data import load

    with pytest.raises(ValueError, match=r"stuck.png.*a named pipe, not a regular file"):
        load(f"folder:{tmp_path / 'photos'}", image_size=8)
    assert load(f"folder:{tmp_path / 'photos'}", image_size=8, skip_bad_images=True).skipped


@pytest.mark.parametrize(("table", "also_train"), [
    ("input 1x8x8\nconv 999999999 3x3\nflatten\ndense 10\n", True),  # 369 billion weights
    ("input 3x100000x100000\nconv 8 3x3\nrelu\n", False),  # a 120 GB input (train reads the data's own size)
    ("input 100\ndense 999999999999\n", False),  # 100 trillion weights
])
def test_tables_that_would_need_terabytes_are_refused_before_allocating(
        table: str, also_train: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.txt"
    path.write_text(table)
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GiB of memory; make its layers or its input smaller" in err, err
    assert "huge.txt: the network would need" in err and "parameters" in err and "activations" in err
    if also_train:
        assert main(["train", "--model", str(path), "--data", "digits", "--out", str(tmp_path / "run")]) == 2
        assert "more than this machine's" in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_a_base_run_whose_table_name_is_a_path_cannot_write_outside(digits_run: TrainedRun, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The tester's first case: `transfer compare --base RUN` wrote the base's table to the file its name said."""
    root = tmp_path / "root"
    run, out = root / "runs" / "base", root / "compare"
    shutil.copytree(digits_run.folder, run)
    _set("source.name", "../../../escaped")(run)
    monkeypatch.chdir(root)
    before = _snapshot(tmp_path, ())
    compare = ["transfer", "compare", "--base", str(run), "--data", "digits", "--classes", "0-4",
               "--train-per-class", "10", "--strategies", "scratch", "--scratch-epochs", "1", "--out", str(out),
               "--precision", "fp32"]
    assert main(compare) == 2
    assert "`source.name` must be a plain name" in capsys.readouterr().err
    assert _snapshot(tmp_path, ()) == before and not list(tmp_path.rglob("escaped*"))
    # with a plain name, the table goes into the comparison's own folder under a fixed name
    _set("source.name", "digits_net")(run)
    assert main(compare) == 0
    capsys.readouterr()
    assert (out / "base_table.txt").read_text() == _card(run)["source"]["text"]
    outside = _snapshot(tmp_path, (out,))
    assert {k for k in outside if k not in before} == set()


def test_class_names_that_look_like_math_are_drawn_as_written(tmp_path: Path, digits_net: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``x$^{$`` as a class folder: matplotlib's math-text parser failed on it, so the run could never be evaluated."""
    rng = np.random.default_rng(0)
    names = ("a$b", "x$^{$")
    for index, name in enumerate(names):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for n in range(10):
            pixels = rng.integers(0, 90, (8, 8)) + 160 * index
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "photos" / name / f"{n}.png")
    table = digits_net.read_text().replace("dense 5", "dense 2")
    digits_net.write_text(table)
    run = tmp_path / "run"
    assert main(["train", "--model", str(digits_net), "--data", f"folder:{tmp_path / 'photos'}", "--image-size", "8",
                 "--grayscale", "--val-split", "0.4", "--epochs", "1", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert [row["name"] for row in metrics["per_class"]] == list(names)
    assert {"confusion_matrix", "mistakes"} <= set(metrics["files"]) and (run / "report.html").is_file()


@pytest.mark.parametrize(("words", "message"), [
    (["--model", "lenet5", "--image-size", "100000"], "--image-size must be from 1 to 8192 pixels. Received: 100000"),
    (["--model", "lenet5", "--image-size", "8000"],
     "at image size 8000x8000: 359 images of 1x8000x8000 would take 21.4 GiB, more than half this machine's"),
    (["--model", "fastnet", "--image-size", "28", "--model-options", "width=99999"],
     "--model fastnet: the network would need 22,130.9 GiB"),
])
def test_flags_asking_for_terabytes_are_one_line(words: list[str], message: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Each ended in an allocator traceback; the width one was also misread as a wrong input size."""
    monkeypatch.setenv("CNNKIT_MEMORY_LIMIT", str(24 << 30))
    assert main(["train", "--data", "digits", *words, "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Resize them" not in err, err
    assert not (tmp_path / "run").exists()
