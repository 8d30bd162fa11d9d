"""The slides' examples: recomputed, correct, and every misprint found where the fixture says."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from cnnkit.explain import example_names, explain_example, explain_examples, load_examples


def test_every_example_matches_the_correct_result() -> None:
    results = explain_examples()
    assert [r.id for r in results] == example_names()
    assert all(r.ok for r in results), [r.id for r in results if not r.ok]


@pytest.mark.parametrize("example", [e for e in load_examples()["convolution"] if "slide_shows" in e], ids=lambda e: e["id"])
def test_slide_misprints_are_found_where_they_are(example: dict[str, Any]) -> None:
    printed, correct = np.array(example["slide_shows"]), np.array(example["expected"])
    where = [[int(i), int(j)] for i, j in zip(*np.nonzero(printed != correct), strict=True)]
    result = explain_example(example["id"])
    found = result.to_dict()["slide_differences"]
    assert [[d["row"], d["col"]] for d in found] == where
    for d in found:
        assert d["slide_shows"] == printed[d["row"], d["col"]]
        assert d["correct"] == correct[d["row"], d["col"]]
        assert f"row {d['row']}, column {d['col']}" in d["why"]
        assert d["why"].endswith(f"the slide prints {d['slide_shows']}")
    assert result.slide_error == example["slide_error"]


def test_examples_without_misprints_report_none() -> None:
    assert explain_example("bright-left-edge").slide_differences == []


def test_pooling_example_checks_max_and_average() -> None:
    result = explain_example("max-and-average-4x4")
    assert [c.what for c in result.checks] == ["max pooling", "avg pooling"]
    assert result.to_dict()["explanations"][1]["output"] == [[3.25, 5], [5.25, 5.5]]


def test_output_size_cases() -> None:
    result = explain_example("output-size")
    assert result.ok and len(result.checks) == 6
    assert result.checks[-1].what == "n=32, f=5, p=0, s=1: (32 + 2*0 - 5)/1 + 1 = 28"


def test_results_are_json_ready() -> None:
    for result in explain_examples():
        json.dumps(result.to_dict())


def test_unknown_example_suggests_the_nearest() -> None:
    with pytest.raises(ValueError, match=r"unknown example. Did you mean laplacian-5x5.*Received: name='laplacian'"):
        explain_example("laplacian")

