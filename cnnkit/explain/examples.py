"""The lecture slides' worked examples, recomputed step by step and checked against what the slides print.

The examples live in ``cnnkit/data_files/seed_examples.json``: for each, the
input, the kernel or pool size, the correct result (``expected``) and, where a
slide printed something else, what it printed (``slide_shows``) and why that is
wrong (``slide_error``). :func:`explain_example` recomputes the example with
:mod:`cnnkit.reference`, confirms the correct result and points at every cell
where the slide differs, with the window and the arithmetic that gives the
right number.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

from cnnkit import arith
from cnnkit.explain.matrices import inline, to_lists
from cnnkit.explain.param_examples import PARAMETER_EXAMPLES
from cnnkit.explain.results import Check, ExampleResult
from cnnkit.explain.steps import cell_text, differences, explain_conv, explain_pool

OUTPUT_SIZE_ID = "output-size"


@cache
def load_examples() -> dict[str, Any]:
    """The packaged ``seed_examples.json``, parsed once."""
    text = (resources.files("cnnkit") / "data_files" / "seed_examples.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def example_names() -> list[str]:
    """Every example that :func:`explain_example` runs: convolutions, poolings, the output-size cases, parameter counts."""
    data = load_examples()
    return ([e["id"] for e in data["convolution"]] + [e["id"] for e in data["pooling"]] + [OUTPUT_SIZE_ID]
            + [e["id"] for e in data["parameters"]])


def _find(name: str) -> tuple[str, dict[str, Any]]:
    data = load_examples()
    for kind in ("convolution", "pooling", "parameters"):
        for example in data[kind]:
            if example["id"] == name:
                return kind, example
    if name == OUTPUT_SIZE_ID:
        return "output_size", data["output_size"]
    names = example_names()
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ValueError(f"unknown example.{hint} Known: {', '.join(names)}. Received: name={name!r}")


def _convolution(example: dict[str, Any]) -> ExampleResult:
    explanation = explain_conv(example["input"], example["kernel"], example["stride"], example["padding"])
    checks = [Check("output", to_lists(explanation.output), example["expected"])]
    found = []
    if "slide_shows" in example:
        for step, printed in differences(explanation, example["slide_shows"]):
            found.append({
                "row": step["row"],
                "col": step["col"],
                "slide_shows": printed,
                "correct": step["value"],
                "window": step["window"],
                "why": f"{cell_text(step)} gives {step['expression']}, the slide prints {printed}",
            })
    return ExampleResult(example["id"], example["source"], "convolution", [explanation], checks, found, example.get("slide_error"))


def _pooling(example: dict[str, Any]) -> ExampleResult:
    explanations, checks = [], []
    for mode, key in (("max", "expected_max"), ("avg", "expected_average")):
        if key in example:
            explanation = explain_pool(example["input"], example["size"], example["stride"], mode)
            explanations.append(explanation)
            checks.append(Check(f"{mode} pooling", to_lists(explanation.output), example[key]))
    notes = []
    misprinted = _misprinted_source(example["input"])
    if misprinted is not None:
        # the slide pools its own misprinted feature map; show what the correct map gives
        correct = explain_pool(misprinted["expected"], example["size"], example["stride"], "max")
        explanations.append(correct)
        cells = [f"{d['row']},{d['col']}" for d in _convolution(misprinted).slide_differences]
        notes.append(f"the input is the slide's misprinted feature map from {misprinted['id']} (wrong at row,column "
                     f"{'; '.join(cells)}); the correctly computed map [{inline(correct.input)}] max-pools to "
                     f"{to_lists(correct.output)}")
    return ExampleResult(example["id"], example["source"], "pooling", explanations, checks, notes=notes)


def _misprinted_source(matrix: list[list[float]]) -> dict[str, Any] | None:
    """The convolution example whose slide printed exactly ``matrix`` (a misprint reused as input), if any."""
    for example in load_examples()["convolution"]:
        if example.get("slide_shows") == matrix:
            return example
    return None


def _output_size(section: dict[str, Any]) -> ExampleResult:
    checks = []
    for case in section["cases"]:
        worked = arith.conv_output_worked(case["n"], case["f"], case["s"], case["p"])[0]
        checks.append(Check(f"n={case['n']}, f={case['f']}, p={case['p']}, s={case['s']}: {worked.formula}", worked.value, case["expected"]))
    return ExampleResult(OUTPUT_SIZE_ID, section["source"], "output_size", [], checks)


def explain_example(name: str) -> ExampleResult:
    """Recompute one slide example by id (see :func:`example_names`); unknown ids suggest the nearest."""
    kind, example = _find(name)
    if kind == "convolution":
        return _convolution(example)
    if kind == "pooling":
        return _pooling(example)
    if kind == "parameters":
        return PARAMETER_EXAMPLES[name](example)
    return _output_size(example)


def explain_examples() -> list[ExampleResult]:
    """Every slide example, recomputed."""
    return [explain_example(name) for name in example_names()]
