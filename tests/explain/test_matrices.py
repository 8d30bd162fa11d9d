"""Matrices from the command line: inline text, JSON, .json/.csv/.npy files, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.explain.matrices import grid, inline, parse_matrix

EXPECTED = [[3.0, 0.0, 1.0], [1.0, 5.0, -8.5]]


@pytest.mark.parametrize("text", ["3 0 1; 1 5 -8.5", "3,0,1;1,5,-8.5", "3 0 1\n1 5 -8.5\n", "[[3, 0, 1], [1, 5, -8.5]]"])
def test_inline_forms(text: str) -> None:
    assert parse_matrix(text, "input").tolist() == EXPECTED


def test_files(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps(EXPECTED))
    (tmp_path / "m.csv").write_text("3,0,1\n1,5,-8.5\n")
    np.save(tmp_path / "m.npy", np.array(EXPECTED))
    for name in ("m.json", "m.csv", "m.npy"):
        assert parse_matrix(str(tmp_path / name), "input").tolist() == EXPECTED


def test_ragged_rows_are_refused() -> None:
    with pytest.raises(ValueError, match=r"`kernel` must be a rectangular matrix of numbers.*Received: kernel='1 2; 3'"):
        parse_matrix("1 2; 3", "kernel")


def test_vectors_and_empty_input_are_refused() -> None:
    with pytest.raises(ValueError, match=r"`input` must be a non-empty 2-D matrix. Received: input='\[1, 2, 3\]' \(shape \(3,\)\)"):
        parse_matrix("[1, 2, 3]", "input")
    with pytest.raises(ValueError, match=r"non-empty 2-D matrix"):
        parse_matrix("  ", "input")


def test_non_finite_and_missing_file() -> None:
    with pytest.raises(ValueError, match=r"`input` must hold finite numbers"):
        parse_matrix("1 nan", "input")
    with pytest.raises(FileNotFoundError, match=r"`input`: no such file. Received: input='nope.csv'"):
        parse_matrix("nope.csv", "input")


def test_text_forms_round_trip() -> None:
    m = np.array(EXPECTED)
    assert inline(m) == "3 0 1; 1 5 -8.5"
    assert parse_matrix(inline(m), "input").tolist() == EXPECTED
    assert grid(m) == ["     3    0    1", "     1    5 -8.5"]
