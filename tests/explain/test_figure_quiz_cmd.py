"""`cnnkit explain ... --figure` and `cnnkit explain quiz` as a user types them: files written, JSON, and bad input
as one message naming the flag and the value, exit status 2, nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.cli import main

CONV = ["explain", "conv", "--input", "3 0 1; 1 5 8; 2 7 2", "--kernel", "1 0; 0 1"]


def _png_ok(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 200
        assert len(image.convert("L").getcolors(maxcolors=1 << 16) or []) > 2  # not one flat colour


def test_conv_figure_json_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "conv.png"
    assert main([*CONV, "--figure", str(out), "--cell", "1,0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["figure"] == str(out) and data["output"] == [[8, 8], [8, 7]]
    _png_ok(out)


@pytest.mark.parametrize("argv", [
    ["explain", "pool", "--input", "1 3 2 1; 3 6 8 9; 8 3 3 9; 4 6 8 2", "--size", "2", "--cell", "1,1"],
    ["explain", "backprop", "conv", "--input", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 0; 0 -1", "--padding", "1"],
    ["explain", "backprop", "pool", "--input", "4 -3 -1; -2 3 -3; -3 2 3", "--size", "2", "--stride", "1"],
    ["explain", "deconv", "--input", "1 2; 3 4", "--kernel", "1 0; 2 1", "--stride", "2", "--cell", "0,1"],
    ["explain", "conv", "--input", "1 2; 3 4 | 5 6; 7 8", "--kernel", "1 | 2", "--kernel", "0 | -1", "--cell", "1,0,1"],
])
def test_every_drawable_explanation_writes_its_figure(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figure.svg"
    assert main([*argv, "--figure", str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"wrote the figure {out}")
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()


@pytest.mark.parametrize(("extra", "message"), [
    (["--figure", "F.png", "--cell", "2,0"], r"`--cell` must be a cell of the 2x2 output \(row 0-1, column 0-1\). Received: --cell=2,0"),
    (["--figure", "F.png", "--cell", "one,two"], r"`--cell` must be ROW,COL \(or FILTER,ROW,COL\), whole numbers from 0. Received: --cell='one,two'"),
    (["--figure", "F.png", "--cell", "1.5,0"], r"whole numbers from 0. Received: --cell='1.5,0'"),
    (["--cell", "1,1"], r"`--cell` chooses the window a figure highlights: give --figure FILE too. Received: --cell='1,1'"),
    (["--figure", "F.jpg"], r"`--figure` must end in .png or .svg \(the format follows the suffix\). Received: --figure='.*F.jpg'"),
    (["--figure", "no/such/F.png"], r"`--figure`: the folder '.*no/such' does not exist"),
])
def test_bad_figure_flags_are_one_error(extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path / a) if a.startswith(("F.", "no/")) else a for a in extra]
    assert main([*CONV, *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("cnnkit: error: ") and len(captured.err.strip().splitlines()) == 1
    assert re.search(message, captured.err)
    assert list(tmp_path.iterdir()) == []


def test_quiz_text_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "quiz", "--topic", "params", "--seed", "4", "--count", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Quiz: parameters (seed 4, 3 exercise(s))") and "\nAnswers\n" in text
    page = tmp_path / "quiz.html"
    assert main(["explain", "quiz", "--topic", "params", "--seed", "4", "--count", "3", "--json", "--html", str(page)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["html"] == str(page) and [e["number"] for e in data["exercises"]] == [1, 2, 3]
    assert all(e["question"] in text and e["summary"] in text for e in data["exercises"])  # the text is the same quiz
    assert page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(("extra", "message"), [
    (["--count", "0"], "`--count` must be from 1 to 50. Received: --count=0"),
    (["--seed", "-2"], "`--seed` must be a non-negative int. Received: --seed=-2"),
    (["--html", "quiz.pdf"], "`--html` must name a .html file. Received: --html='quiz.pdf'"),
])
def test_bad_quiz_flags_are_one_error(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "quiz", "--topic", "conv", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"cnnkit: error: {message}\n" and captured.out == ""


def test_unknown_topic_is_argparses_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "quiz", "--topic", "padding"])
    assert exit_info.value.code == 2
    assert "argument --topic: invalid choice: 'padding'" in capsys.readouterr().err
