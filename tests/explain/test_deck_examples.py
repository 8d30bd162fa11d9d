"""Every packaged deck example against PyTorch, the misprints cell by cell, the inconsistencies, and the transcription.

The numbers the examples hold are checked three ways: recomputed with ``torch.nn.functional``
(conv2d, max_pool2d, avg_pool2d, min pooling as -max_pool2d(-x), flatten), compared with the
lecture decks' own text (every matrix must appear there row by row), and, for the misprints,
against a table written out here by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.explain import explain_example, explain_examples, load_examples
from cnnkit.explain.render import render_example

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
EXAMPLES = load_examples()
CONVOLUTIONS = EXAMPLES["convolution"]
POOLINGS = EXAMPLES["pooling"]


def _t(value: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(value, dtype=np.float64))


def _torch_conv(example: dict[str, Any], input: Any = None, kernel: Any = None) -> np.ndarray:
    """The example's convolution by torch: ``(H, W)`` for a matrix example, ``(F, H, W)`` for a volume."""
    x, w = _t(example["input"] if input is None else input), _t(example["kernel"] if kernel is None else kernel)
    matrix = x.ndim == 2
    x = x[None, None] if matrix else x[None]  # (1, C, H, W)
    w = w[None, None] if w.ndim == 2 else (w[None] if w.ndim == 3 else w)  # (F, C, kh, kw)
    out = F.conv2d(x, w, stride=example["stride"], padding=example["padding"])[0]
    return (out[0] if matrix else out).numpy()


def _torch_pool(x: Any, size: int, stride: int, mode: str) -> np.ndarray:
    t = _t(x)[None, None]
    if mode == "max":
        out = F.max_pool2d(t, size, stride)
    elif mode == "avg":
        out = F.avg_pool2d(t, size, stride)
    else:
        out = -F.max_pool2d(-t, size, stride)
    return out[0, 0].numpy()


@pytest.mark.parametrize("example", CONVOLUTIONS, ids=lambda e: e["id"])
def test_convolution_examples_agree_with_torch(example: dict[str, Any]) -> None:
    want = _torch_conv(example)
    np.testing.assert_array_equal(np.asarray(example["expected"], dtype=np.float64), want)
    result = explain_example(example["id"])
    assert result.ok
    np.testing.assert_array_equal(result.explanations[0].output, want)
    for d in result.slide_differences:  # every reported correct value is torch's
        cell = (d["filter"], d["row"], d["col"]) if "filter" in d else (d["row"], d["col"])
        assert d["correct"] == want[cell]


@pytest.mark.parametrize("example", POOLINGS, ids=lambda e: e["id"])
def test_pooling_examples_agree_with_torch(example: dict[str, Any]) -> None:
    result = explain_example(example["id"])
    assert result.ok
    outputs = {e.parameters["mode"]: e.output for e in result.explanations if np.array_equal(e.input, example["input"])}
    for mode, key in (("max", "expected_max"), ("avg", "expected_average"), ("min", "expected_min")):
        if key in example:
            want = _torch_pool(example["input"], example["size"], example["stride"], mode)
            np.testing.assert_array_equal(np.asarray(example[key], dtype=np.float64), want)
            np.testing.assert_array_equal(outputs[mode], want)
    if "expected_flattened" in example:
        pooled = F.max_pool2d(_t(example["input"])[None, None], example["size"], example["stride"])
        flat = torch.flatten(pooled[0, 0]).numpy()  # row by row, what a Flatten layer does
        np.testing.assert_array_equal(np.asarray(example["expected_flattened"], dtype=np.float64), flat)
        assert result.checks[-1].computed == flat.tolist()


# (example, row, column, what the slide prints, the correct value, the kind): written out by hand from the decks
MISPRINTS = {
    "vertical-edge-6x6": [(1, 2, 2, -2, "misprint")],
    "laplacian-5x5": [(0, 0, 4, 3, "misprint")],
    "laplacian-5x5-stride-2": [(0, 0, 4, 3, "misprint")],
    "rgb-conv-padded": [(1, 0, 370, -370, "misprint"), (1, 1, 11, 2, "misprint"), (2, 0, 393, -393, "misprint"),
                        (4, 1, -158, -152, "misprint")],
    # pools the misprinted map above: 11 follows from neither map, the 393s only from the misprinted one
    "rgb-max-pool": [(0, 0, 11, 2, "inconsistent"), (1, 0, 393, 48, "inherited"), (1, 1, 119, 133, "misprint"),
                     (1, 2, 119, 133, "misprint"), (2, 0, 393, 48, "inherited")],
}


@pytest.mark.parametrize("name", list(MISPRINTS))
def test_misprints_are_found_cell_by_cell_with_the_correct_value(name: str) -> None:
    found = explain_example(name).slide_differences
    assert [(d["row"], d["col"], d["slide_shows"], d["correct"], d["kind"]) for d in found] == MISPRINTS[name]
    for d in found:
        assert f"row {d['row']}, column {d['col']}" in d["why"]


def test_every_other_example_reports_no_misprint() -> None:
    for result in explain_examples():
        if result.id not in MISPRINTS and result.kind in ("convolution", "pooling"):
            assert result.slide_differences == [], result.id


def test_the_rgb_pooling_slide_is_internally_inconsistent() -> None:
    blue = load_example_for("rgb-conv-padded")
    correct_map = _torch_conv(blue)  # the padded convolution, computed right
    printed_map = np.asarray(blue["slide_shows"], dtype=np.float64)
    from_printed, from_correct = _torch_pool(printed_map, 2, 1, "max"), _torch_pool(correct_map, 2, 1, "max")
    result = explain_example("rgb-max-pool")
    by_cell = {(d["row"], d["col"]): d for d in result.slide_differences}
    inconsistent = by_cell[(0, 0)]
    # the printed 11 is neither what the printed map gives (370) nor what the correct one gives (2)
    assert inconsistent["slide_shows"] == 11 != from_printed[0, 0] == inconsistent["from_slide_input"] == 370
    assert from_correct[0, 0] == inconsistent["correct"] == 2
    assert "follows from neither its own map" in inconsistent["why"] and "internally inconsistent" in inconsistent["why"]
    for cell in ((1, 0), (2, 0)):  # the printed 393 follows from the printed map's sign error
        assert by_cell[cell]["slide_shows"] == from_printed[cell] == 393 and by_cell[cell]["correct"] == from_correct[cell] == 48
    assert result.printed_count == 16
    text = render_example(result, steps=False)
    assert "slide is inconsistent at row 0, column 0: the slide prints 11" in text
    assert "slide differs (inherited from its misprinted input) at row 1, column 0" in text


def load_example_for(name: str) -> dict[str, Any]:
    return next(e for e in [*CONVOLUTIONS, *POOLINGS] if e["id"] == name)


def test_the_binary_filter_printed_two_ways() -> None:
    example = load_example_for("binary-conv")
    result = explain_example("binary-conv")
    assert result.printed_count == 2 and result.slide_differences == []  # the printed 4 and 3 are right
    beside_input, with_nine = result.slide_variants
    assert beside_input["differs"] == [{"at": [1, 2], "slide_shows": 1, "used": 0}]
    with_it = _torch_conv(example, kernel=[[1, 0, 1], [0, 1, 1], [1, 0, 1]])
    assert beside_input["output"] == with_it.tolist() and with_it[0, 0] == 5 and with_it[0, 1] == 4
    # both printed numbers follow from the kernel the calculations use, neither from the one beside the input
    assert [(f["at"], f["slide_shows"], f["with_variant"]) for f in beside_input["printed_follow_this_example"]] == [
        ([0, 0], 4, 5), ([0, 1], 3, 4)]
    assert with_nine["differs"] == [{"at": [2, 1], "slide_shows": 9, "used": 0}]
    assert with_nine["output"] == _torch_conv(example, kernel=[[1, 0, 1], [0, 1, 0], [1, 9, 1]]).tolist()


def test_the_stray_nines_in_the_stride_pictures() -> None:
    example = load_example_for("binary-conv-stride2")
    first, second = explain_example("binary-conv-stride2").slide_variants
    assert first["differs"] == [{"at": [4, 4], "slide_shows": 9, "used": 0}]
    assert first["changes"] == [{"at": [1, 1], "value": 13, "correct": 4}]
    shown = np.asarray(example["input"], dtype=np.float64)
    shown[4, 4] = 9
    assert first["output"] == _torch_conv(example, input=shown).tolist()
    assert second["differs"] == [{"at": [3, 4], "slide_shows": 9, "used": 0}] and second["changes"] == []
    assert "it changes no output cell" in second["why"]


def test_the_rgb_image_meets_two_filters() -> None:
    result = explain_example("rgb-conv-two-filters")
    example = load_example_for("rgb-conv-two-filters")
    out = result.explanations[0].output
    assert out.shape == (2, 3, 3)
    # filter 1 sees only the R plane: its map is the R channel convolved alone
    red = F.conv2d(_t(example["input"][0])[None, None], _t(example["kernel"][0][0])[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(out[0], red)


def _rows(matrix: Any) -> list[str]:
    return ["\t".join(str(v) for v in row) for row in np.asarray(matrix).astype(int).tolist()]


def _appears(deck: str, matrix: Any) -> bool:
    """Whether the matrix's rows stand in the deck's text on consecutive lines, tab-separated, as the decks print them."""
    lines = [line.strip() for line in deck.splitlines()]
    rows = _rows(matrix)
    return any(lines[i:i + len(rows)] == rows for i in range(len(lines)))


@pytest.mark.skipif(not SEEDS.exists(), reason="the lecture decks are not checked out here")
@pytest.mark.parametrize("example", [e for e in [*CONVOLUTIONS, *POOLINGS] if e["source"][:3] in ("003", "004")],
                         ids=lambda e: e["id"])
def test_deck_examples_are_transcribed_from_the_decks(example: dict[str, Any]) -> None:
    deck = next(SEEDS.glob(f"{example['source'][:3]}_*.txt")).read_text(encoding="utf-8")
    inputs = example["input"] if np.ndim(example["input"]) == 3 else [example["input"]]
    for channel in inputs:
        assert _appears(deck, channel)
    if "kernel" in example and example["source"].startswith("004"):
        assert _appears(deck, example["kernel"])
    if example["source"].startswith("003") and "kernel" in example:
        assert _appears(deck, np.asarray(example["kernel"]).reshape(-1, 3, 3)[0])  # the vertical-edge filter
    for key in ("slide_shows", "slide_shows_max"):
        if key in example:
            assert _appears(deck, example[key])
    for cell in example.get("slide_cells", []):
        assert cell["where"].split(": ", 1)[1] in deck
    for variant in example.get("slide_variants", []):
        if "kernel" in variant:
            assert _appears(deck, variant["kernel"])
        else:  # the window pictures print products ("1x1") in the window: the stray 9 stands in the rows below it
            rows = _rows(variant["input"])
            assert any(row in deck for row in rows[3:] if "9" in row)
