"""The lecture slides' worked examples (cnnkit/data_files/seed_examples.json), reproduced exactly."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnkit import reference as R

SHARED_COPY = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "seed_examples.json"


def _examples() -> dict[str, Any]:
    return json.loads((resources.files("cnnkit") / "data_files" / "seed_examples.json").read_text(encoding="utf-8"))


EXAMPLES = _examples()


def _nchw(matrix: list[list[float]]) -> np.ndarray:
    return np.asarray(matrix, dtype=np.float64)[None, None]  # (1, 1, H, W)


@pytest.mark.parametrize("example", EXAMPLES["convolution"], ids=lambda e: e["id"])
def test_convolution_examples(example: dict[str, Any]) -> None:
    out = R.conv2d(_nchw(example["input"]), _nchw(example["kernel"]), stride=example["stride"], padding=example["padding"])
    np.testing.assert_array_equal(out[0, 0], example["expected"])
    if "slide_shows" in example:
        # the slide's misprint is a real difference, in exactly one cell
        assert int((out[0, 0] != np.asarray(example["slide_shows"])).sum()) == 1


@pytest.mark.parametrize("example", EXAMPLES["pooling"], ids=lambda e: e["id"])
def test_pooling_examples(example: dict[str, Any]) -> None:
    x = _nchw(example["input"])
    np.testing.assert_array_equal(R.max_pool2d(x, example["size"], example["stride"])[0, 0], example["expected_max"])
    if "expected_average" in example:
        np.testing.assert_array_equal(R.avg_pool2d(x, example["size"], example["stride"])[0, 0], example["expected_average"])


@pytest.mark.parametrize("case", EXAMPLES["output_size"]["cases"], ids=lambda c: "n{n}-f{f}-p{p}-s{s}".format(**c))
def test_output_size_examples(case: dict[str, int]) -> None:
    n, f = case["n"], case["f"]
    out = R.conv2d(np.zeros((1, 1, n, n)), np.zeros((1, 1, f, f)), stride=case["s"], padding=case["p"])
    assert out.shape == (1, 1, case["expected"], case["expected"])


@pytest.mark.skipif(not SHARED_COPY.exists(), reason="the shared fixtures are not checked out here")
def test_packaged_copy_matches_the_shared_fixtures() -> None:
    assert _examples() == json.loads(SHARED_COPY.read_text(encoding="utf-8"))
