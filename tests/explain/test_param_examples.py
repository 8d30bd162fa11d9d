"""The slides' parameter examples: the LeNet table row by row, the Keras summary, the quiz, FC vs conv; the pooled misprint."""

from __future__ import annotations

import pytest

from cnnkit import spec
from cnnkit.explain import example_names, explain_example, load_examples
from cnnkit.explain.render import render_example
from cnnkit.summarize import summary


def test_parameter_fixtures_are_listed() -> None:
    assert example_names()[-5:] == ["quiz-10-filters", "fc-vs-conv", "lenet-table", "keras-summary", "fc-large-image"]


@pytest.mark.parametrize(("name", "table"), [("lenet-table", "lenet_slides"), ("keras-summary", "keras_slides")])
def test_tables_match_every_slide_row_and_the_torch_summary(name: str, table: str) -> None:
    result = explain_example(name)
    fixture = next(e for e in load_examples()["parameters"] if e["id"] == name)
    assert result.ok
    assert len(result.checks) == len(fixture["layers"]) + 1
    loaded = spec.load_shipped(table)
    total = summary(spec.build(loaded), loaded.input_shape).total_params
    assert result.checks[-1].computed == total == fixture["expected_total"]
    assert sum(row["params"] for row in result.table) == total


def test_lenet_points_out_the_slides_61795() -> None:
    result = explain_example("lenet-table")
    assert [(d["slide_shows"], d["correct"]) for d in result.slide_differences] == [(48001, 48120), (10081, 10164), (841, 850)]
    assert any("456 + 2416 + 48001 + 10081 + 841 = 61,795; the correct total is 62,006" in note for note in result.notes)
    text = render_example(result)
    assert "dense 120             120               120    48000     120   48120  (400 + 1)*120 = 48120" in text
    assert "total learnable parameters: 62,006" in text


def test_quiz_and_fc_vs_conv() -> None:
    quiz = explain_example("quiz-10-filters")
    assert quiz.ok and quiz.checks[0].what.endswith("(3*3*3 + 1)*10 = 280")
    fc = explain_example("fc-vs-conv")
    assert fc.ok and [c.computed for c in fc.checks] == [14450688, 456]


def test_pooling_the_misprinted_feature_map_notes_the_correct_result() -> None:
    result = explain_example("max-3x3-feature-map")
    assert result.ok  # the fixture's expected_max is for the slide's own (misprinted) map
    assert result.notes == ["the input is the slide's misprinted feature map from laplacian-5x5 (wrong at row,column 0,0); "
                            "the correctly computed map [3 -3 -1; -2 3 -3; -3 2 3] max-pools to [[3, 3], [3, 3]]"]
    assert result.explanations[-1].output.tolist() == [[3, 3], [3, 3]]
