"""A lecturer's own examples file: checked like the packaged ones, random examples against torch, one error per bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.cli import main
from cnnkit.explain import explain_example, explain_examples, load_example_file

DECK_FILE = Path(__file__).resolve().parents[2] / "cnnkit" / "data_files" / "deck_examples.json"


def _write(tmp_path: Path, data: Any, name: str = "my_examples.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _random_conv(rng: np.random.Generator, i: int) -> tuple[dict[str, Any], np.ndarray]:
    """A random example, its expected output from torch, and a slide that misprints one random cell."""
    channels = int(rng.integers(1, 4))
    size, k, stride, padding = int(rng.integers(4, 8)), int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    x = rng.integers(-9, 10, (channels, size, size))
    w = rng.integers(-3, 4, (2, channels, k, k))
    want = F.conv2d(torch.tensor(x, dtype=torch.float64)[None], torch.tensor(w, dtype=torch.float64), stride=stride,
                    padding=padding)[0].numpy()  # (2, H_out, W_out)
    printed = want.copy()
    cell = tuple(int(rng.integers(0, n)) for n in printed.shape)
    printed[cell] += 1
    example = {"id": f"random-{i}", "input": x.tolist(), "kernel": w.tolist(), "stride": stride, "padding": padding,
               "expected": want.tolist(), "slide_shows": printed.tolist()}
    return example, np.array(cell)


@pytest.mark.parametrize("seed", range(8))
def test_random_volume_examples_find_the_one_misprinted_cell(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    example, cell = _random_conv(rng, seed)
    examples = load_example_file(_write(tmp_path, {"convolution": [example]}))
    result = explain_example(example["id"], examples)
    assert result.ok and result.printed_count == np.asarray(example["expected"]).size
    (found,) = result.slide_differences
    assert [found["filter"], found["row"], found["col"]] == cell.tolist()
    assert found["correct"] == np.asarray(example["expected"])[tuple(cell)]
    assert found["slide_shows"] == found["correct"] + 1


@pytest.mark.parametrize("seed", range(8))
def test_random_pooling_examples_agree_with_torch(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    size, stride = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    padding = int(rng.integers(0, size // 2 + 1))
    x = rng.integers(-9, 10, tuple(int(n) for n in rng.integers(size + 1, 8, size=2)))
    t = torch.tensor(x, dtype=torch.float64)[None, None]
    ceil = bool(seed % 2)
    expected = {
        "expected_max": F.max_pool2d(t, size, stride, padding, ceil_mode=ceil)[0, 0].numpy(),
        "expected_average": F.avg_pool2d(t, size, stride, padding, ceil_mode=ceil)[0, 0].numpy(),
        "expected_min": -F.max_pool2d(-t, size, stride, padding, ceil_mode=ceil)[0, 0].numpy(),
    }
    example = {"id": "pool", "input": x.tolist(), "size": size, "stride": stride, "padding": padding, "ceil_mode": ceil,
               **{key: value.tolist() for key, value in expected.items()}, "slide_shows_max": expected["expected_max"].tolist()}
    result = explain_example("pool", load_example_file(_write(tmp_path, {"pooling": [example]})))
    assert result.ok and result.slide_differences == []
    for explanation, key in zip(result.explanations, expected, strict=True):
        np.testing.assert_allclose(explanation.output, expected[key], rtol=0, atol=1e-12)


def test_the_packaged_deck_file_reads_as_a_lecturers_file(capsys: pytest.CaptureFixture[str]) -> None:
    examples = load_example_file(DECK_FILE)
    assert [r.id for r in explain_examples(examples)][:2] == ["rgb-conv", "rgb-conv-stride2"]
    assert main(["explain", "example", "--file", str(DECK_FILE), "rgb-conv-padded"]) == 0
    out = capsys.readouterr().out
    assert "slide differs at row 1, column 0: the window [0 60 7; 0 165 159; 0 187 204] gives" in out
    assert "= -370, the slide prints 370" in out


def test_a_file_with_fractions_and_rounded_printed_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blur = [["1/9"] * 3] * 3
    x = [[9, 0, 0, 3], [0, 0, 0, 3], [0, 0, 2, 3], [1, 1, 1, 1]]
    want = F.conv2d(torch.tensor(x, dtype=torch.float64)[None, None], torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64))[0, 0]
    rounded = np.round(want.numpy(), 2).tolist()  # how a slide prints them: 1.22, 0.89 ...
    rounded_wrong = [row[:] for row in rounded]
    rounded_wrong[1][1] = 0.5
    path = _write(tmp_path, {"convolution": [{"id": "blur", "source": "my slide 3", "input": x, "kernel": blur,
                                              "expected": rounded, "slide_shows": rounded_wrong}]})
    assert main(["explain", "example", "--file", str(path), "blur", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["source"] == "my slide 3"
    np.testing.assert_allclose(data["explanations"][0]["output"], want.numpy(), rtol=0, atol=1e-12)
    (diff,) = data["slide_differences"]
    assert (diff["row"], diff["col"], diff["slide_shows"]) == (1, 1, 0.5)
    assert diff["correct"] == pytest.approx(float(want[1, 1]), abs=1e-12)


def test_a_file_without_a_name_checks_every_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"id": "edge", "input": [[10, 10, 0, 0]] * 3, "kernel": [[1, 0, -1]] * 3, "expected": [[30, 30]]}
    wrong = {**good, "id": "wrong", "expected": [[30, 31]]}
    path = _write(tmp_path, {"convolution": [good, wrong]})
    assert main(["explain", "example", "--file", str(path)]) == 1  # one example's expected is not the correct result
    out = capsys.readouterr().out
    assert "edge (convolution, from my_examples.json): matches the correct result" in out
    assert "wrong (convolution, from my_examples.json): DOES NOT match the correct result" in out
    assert "FAIL output: computed [[30, 30]], expected [[30, 31]]" in out
    assert main(["explain", "example", "--file", str(path), "edg"]) == 2
    assert "unknown example. Did you mean edge?" in capsys.readouterr().err


GOOD = {"id": "ok", "input": [[1, 2], [3, 4]], "kernel": [[1]], "expected": [[1, 2], [3, 4]]}


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], r"my_examples.json: the file: must be a JSON object with any of convolution, pooling, output_size, parameters. "
             r"Received: \[1, 2\]"),
    ({"convolutions": []}, r"my_examples.json: the file: unknown section\(s\) convolutions; known: convolution"),
    ({}, r"my_examples.json: the file: holds no examples"),
    ({"convolution": [{"id": "a", "input": [[1]], "kernel": [[1]]}]},
     r"my_examples.json: convolution\[0\] \(id 'a'\): missing `expected`"),
    ({"convolution": [{**GOOD, "strides": 2}]},
     r"my_examples.json: convolution\[0\] \(id 'ok'\): unknown key\(s\) `strides`; known: bias, expected, id, input"),
    ({"convolution": [{**GOOD, "kernel": [[1, 2], [3]]}]},
     r"my_examples.json: convolution\[0\] \(id 'ok'\): `kernel` must be a rectangular matrix .*Received: kernel='\[\[1, 2\], \[3\]\]'"),
    ({"convolution": [{**GOOD, "kernel": "1 0; 0 1"}]},
     r"convolution\[0\] \(id 'ok'\): `kernel` must be nested lists of numbers .*Received: kernel=\"1 0; 0 1\""),
    ({"convolution": [{**GOOD, "input": [["1/0", 1]]}]}, r"convolution\[0\] \(id 'ok'\): `input` .*divides by zero"),
    ({"convolution": [{**GOOD, "expected": [[1, 2]]}]},
     r"convolution\[0\] \(id 'ok'\): `expected` must have the shape of the output, \(2, 2\). Received: expected shape=\(1, 2\)"),
    ({"convolution": [{**GOOD, "padding": -1}]},
     r"convolution\[0\] \(id 'ok'\): `padding` must be a non-negative int, \"same\" or \"valid\". Received: padding=-1"),
    ({"convolution": [{**GOOD, "kernel": [[1, 1, 1]] * 3}]}, r"convolution\[0\] \(id 'ok'\): convolution output height would be"),
    ({"convolution": [GOOD, GOOD]}, r"convolution\[1\] \(id 'ok'\): the id 'ok' is used twice"),
    ({"convolution": [{**GOOD, "id": "two words"}]}, r"convolution\[0\] \(id 'two words'\): `id` must be a name"),
    ({"convolution": [{**GOOD, "slide_cells": [{"row": 2, "col": 0, "value": 1}]}]},
     r"convolution\[0\] \(id 'ok'\): `slide_cells\[0\].row` must be an index below 2 .*Received: row=2"),
    ({"convolution": [{**GOOD, "slide_variants": [{"where": "slide 2", "kernel": [[1, 0]]}]}]},
     r"convolution\[0\] \(id 'ok'\): `slide_variants\[0\].kernel` must have the shape of `kernel`"),
    ({"pooling": [{"id": "p", "input": [[1, 2], [3, 4]], "size": 2}]}, r"pooling\[0\] \(id 'p'\): give at least one of `expected_max`"),
    ({"pooling": [{"id": "p", "input": [[1, 2], [3, 4]], "size": 2, "expected_max": [[4]], "input_from": "nope"}]},
     r"pooling\[0\] \(id 'p'\): `input_from` must name a convolution example of this file. Received: input_from=\"nope\""),
    ({"pooling": [{"id": "p", "input": [[1, 2], [3, 4]], "size": 2, "padding": 2, "expected_max": [[4]]}]},
     r"pooling\[0\] \(id 'p'\): pooling: `padding` \(2\) must be at most half the pool size"),
    ({"parameters": [{"id": "my-count", "expected": 3}]},
     r"parameters\[0\] \(id 'my-count'\): a parameter example is worked by its id, one of fc-large-image, lenet-table"),
    ({"convolution": [{**GOOD, "bias": "x"}]},
     r"convolution\[0\] \(id 'ok'\): `bias` must be a finite number \(or a fraction as text, \"1/2\"\). Received: bias=\"x\""),
    ({"convolution": [3]}, r"my_examples.json: convolution\[0\]: must be a JSON object \(an example\). Received: 3"),
    ({"parameters": [{"id": "lenet-table", "layers": 5, "expected_total": 1}]},
     r"parameters\[0\] \(id 'lenet-table'\): `layers` must be a list of rows, each with a `layer` text. Received: layers=5"),
    ({"output_size": {"cases": [{"n": 6, "f": 3, "p": 0, "s": 0, "expected": 4}]}},
     r"output_size: cases\[0\]: `s` must be an int of at least 1. Received: s=0"),
])
def test_a_malformed_file_is_one_error_naming_the_file_and_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, message: str,
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=message):
        load_example_file(path)
    assert main(["explain", "example", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnkit: error: {path}") and err.count("\n") == 1 and "Traceback" not in err


def test_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"convolution": [', encoding="utf-8")
    assert main(["explain", "example", "--file", str(broken)]) == 2
    assert capsys.readouterr().err == f"cnnkit: error: {broken}: not valid JSON (Expecting value at line 1, column 18)\n"
    assert main(["explain", "example", "--file", str(tmp_path / "none.json"), "x"]) == 2
    assert "`--file`: no such file. Received: --file=" in capsys.readouterr().err
    assert main(["explain", "example"]) == 2
    assert "give an example NAME" in capsys.readouterr().err


def test_a_right_number_that_does_not_follow_from_the_printed_map_is_not_counted_as_a_misprint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The slide's conv map has two wrong cells; its pooled map prints, at (1, 1), the max of the correct map (15), not
    of its own (50): that cell is named, but it is not among the numbers that differ from the correct result."""
    examples = {"convolution": [{"id": "c", "input": [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]],
                                 "kernel": [[1, -1], [0, 1]], "padding": 0,
                                 "expected": [[5, 6, 7], [9, 10, 11], [13, 14, 15]],
                                 "slide_shows": [[5, 6, 7], [9, -10, 11], [13, 14, 50]]}],
                "pooling": [{"id": "p", "input": [[5, 6, 7], [9, -10, 11], [13, 14, 50]], "input_from": "c",
                             "size": 2, "stride": 2, "padding": 1, "ceil_mode": True,
                             "expected_max": [[5, 7], [13, 50]], "slide_shows_max": [[5, 7], [13, 15]]}]}
    path = tmp_path / "ex.json"
    path.write_text(json.dumps(examples))
    assert main(["explain", "example", "--file", str(path), "p"]) == 0
    out = capsys.readouterr().out
    assert "p (pooling, from ex.json): matches the correct result\n" in out
    assert "the slide prints 4 number(s) of the result: all are correct" in out
    assert "slide's number is right but does not follow from its own map at row 1, column 1" in out
