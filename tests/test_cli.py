"""The `cnnkit` command as a user runs it: exit codes, one-line errors, JSON, no torch for --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkit.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cnnkit", *args], capture_output=True, text=True, timeout=120)


def test_help_does_not_import_torch() -> None:
    code = "import sys; from cnnkit.cli import build_parser; build_parser().format_help(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
    helped = _run("--help")
    assert helped.returncode == 0 and "summary" in helped.stdout


def test_summary_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "lenet_slides", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 62006
    assert [layer["params"] for layer in data["layers"] if layer["params"]] == [456, 2416, 48120, 10164, 850]


def test_summary_plain_text_and_input_override(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "keras_slides", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 8,459,242" in out and "(3*3*64 + 1)*64 = 36928" in out
    assert main(["summary", "lenet_slides", "--input", "1x28x28", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][0]["output_shape"] == [6, 24, 24]


def test_kernel_larger_than_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    table = tmp_path / "tiny.txt"
    table.write_text("input 6x3x3\nconv 16 5x5   # too big\n")
    result = _run("summary", str(table))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"cnnkit: error: {table}:2: `conv 16 5x5`: convolution output height would be ")
    assert "(3 + 2*0 - 5)/1 + 1 = -1" in lines[0] and "Received: input_size=3, kernel=5" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summary", "lenet_slids"], "Did you mean lenet_slides"),
        (["summary", "missing.txt"], "missing.txt: no such layer-table file"),
        (["summary", "lenet_slides", "--input", "3x32"], "`--input` must be CxHxW"),
        (["summary", "lenet_slides", "--input", "3x4x4"], "lenet_slides.txt:9: `conv 6 5x5`: convolution output height"),
        (["summary", "lenet_slides", "--depth", "0"], "`depth` must be a positive int"),
    ],
)
def test_user_errors_are_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and message in err and err.count("\n") == 1


def test_unknown_command_is_an_argparse_error() -> None:
    result = _run("sumary")
    assert result.returncode == 2 and "invalid choice: 'sumary'" in result.stderr


def test_summary_of_zoo_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "lenet5", "--input", "1x28x28", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 44426
    totals = []
    for depth in ("1", "3"):
        assert main(["summary", "resnet18", "--depth", depth, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        totals.append((data["total_params"], data["total_macs"]))
    assert totals[0] == totals[1] == (11689512, 1814073344)  # the published 11.7M parameters, 1.8 GMACs
    assert main(["summary", "resnt18"]) == 2
    assert "Did you mean resnet18" in capsys.readouterr().err
