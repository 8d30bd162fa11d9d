"""The `cnnkit explain` command, driven through its own parser."""

from __future__ import annotations

import argparse
import json

import pytest

from cnnkit.cli import explain_cmd


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="cnnkit")
    explain_cmd.add_parser(parser.add_subparsers(dest="command"), "explain", "explain")
    code = explain_cmd.run(parser.parse_args(["explain", *argv]))
    return code, capsys.readouterr().out


def test_conv_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["conv", "--input", "3 0 1 2; 1 5 8 9; 2 7 2 5", "--kernel", "1 0; 0 -1", "--stride", "2", "--padding", "1",
                      "--bias", "0.5", "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert set(data) >= {"output", "output_size", "steps"}
    assert data["output_size"]["height"]["formula"] == "floor((3 + 2*1 - 2)/2) + 1 = 2"
    assert data["output_size"]["width"]["formula"] == "(4 + 2*1 - 2)/2 + 1 = 3"
    assert data["output"][0][0] == 0 * 1 + 0 * 0 + 0 * 0 + 3 * -1 + 0.5


def test_conv_text_shows_padding_formula_and_steps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["conv", "--input", "1 2; 3 4", "--kernel", "1 1; 1 1", "--padding", "same"], capsys)
    assert code == 0
    assert "padded input (3x3):" in out
    assert "height: (2 + 0 + 1 - 2)/1 + 1 = 2" in out
    assert "1*1 + 2*1 + 3*1 + 4*1 = 10" in out


def test_pool_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["pool", "--input", "[[1, 3, 2, 1], [3, 6, 8, 9], [8, 3, 3, 9], [4, 6, 8, 2]]", "--size", "2", "--mode", "avg", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["output"] == [[3.25, 5], [5.25, 5.5]]


def test_example_text_names_the_misprint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["example", "vertical-edge-6x6"], capsys)
    assert code == 0
    assert "slide differs at row 1, column 2: the window [8 9 3; 2 5 1; 3 1 7] gives" in out
    assert "= -2, the slide prints 2" in out


def test_examples_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["examples", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["ok"]
    assert len(data["examples"]) == 25  # 14 transcribed fixtures + 11 further deck examples


def test_bad_padding_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"`--padding` must be a non-negative int, 'same' or 'valid'. Received: --padding='-1'"):
        _run(["conv", "--input", "1 2; 3 4", "--kernel", "1", "--padding", "-1"], capsys)


def test_conv_rgb_with_two_filters_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["conv", "--input", "1 2 0; 3 4 1; 0 1 2 | 5 6 1; 7 8 0; 1 1 1", "--kernel", "1 0; 0 1 | 0 1; 1 0",
                      "--kernel", "1 1; 1 1 | -1 0; 0 0", "--bias", "0.5,-1", "--flip", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and set(data) >= {"output", "output_size", "steps"}
    assert data["output_depth"] == 2 and data["parameters"]["flip"]
    first = data["steps"][0]
    assert [ch["sum"] for ch in first["channels"]] == [5, 13] and first["value"] == 18.5


def test_conv_single_matrix_with_dilation_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["conv", "--input", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 -1", "--dilation", "2"], capsys)
    assert code == 0
    assert "output size, floor((n + 2p - d(f - 1) - 1)/s) + 1 per side:" in out
    assert "1*1 + 3*(-1) = -2" in out


@pytest.mark.parametrize(("argv", "expected"), [
    (["activation", "leakyrelu", "--input", "-2 0 3"], "0.1*(-2) = -0.2"),
    (["activation", "maxout", "--input", "1 5 -2 0", "--pieces", "2"], "max(-2, 0) = 0"),
    (["dense", "--input", "1 2", "--weights", "1 0; 0.5 -1", "--bias", "0 1"], "y_1: 1*0.5 + 2*(-1) + 1 = -0.5"),
    (["softmax", "--input", "1 2 3"], "sum: 0.135335 + 0.367879 + 1 = 1.50321"),
    (["params", "conv", "--filters", "10", "--kernel", "3", "--in-channels", "3"], "for 10 filters: (3*3*3 + 1)*10 = 280"),
    (["params", "separable", "--filters", "128", "--in-channels", "3"], "standard convolution: 128 filters of 3x3x3: (3*3*3 + 1)*128 = 3584"),
    (["backprop", "conv", "--input", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 0; 0 -1"],
     "check: cnnkit.reference.conv2d_backward gives the same dL/dX, dL/dK and dL/db"),
    (["example", "lenet-table"], "counting one bias per fully connected layer reproduces the slide's total"),
])
def test_subcommands_text(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(argv, capsys)
    assert code == 0
    assert expected in out


def test_subcommands_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(_run(["params", "depthwise", "--in-channels", "3", "--json"], capsys)[1])["output"] == 30
    assert json.loads(_run(["softmax", "--input", "0 0", "--json"], capsys)[1])["output"] == [0.5, 0.5]
    data = json.loads(_run(["backprop", "conv", "--input", "1 2; 3 4", "--kernel", "1", "--grad", "1 0; 0 2", "--json"], capsys)[1])
    assert data["output"]["grad_weight"] == [[9]] and data["agrees_with_reference"]


def test_user_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.cli import main

    assert main(["explain", "conv", "--input", "1 2; 3 4", "--kernel", "1", "--bias", "a"]) == 2
    assert "cnnkit: error: `--bias` must be numbers separated by commas or spaces. Received: --bias='a'" in capsys.readouterr().err
    assert main(["explain", "activation", "swish", "--input", "1"]) == 2
    assert "unknown activation." in capsys.readouterr().err
