"""The lecture slides' worked examples (or a lecturer's own), recomputed step by step and checked against what the slides print.

The examples live in ``cnnkit/data_files/seed_examples.json`` (the format is
:mod:`cnnkit.explain.example_format`; a lecturer's file in the same format is read by
:func:`load_example_file`): for each, the input, the kernel or pool size, the correct
result (``expected``) and what the slide prints (``slide_shows``, ``slide_cells``).
:func:`explain_example` recomputes the example with :mod:`cnnkit.reference`, confirms
the correct result and points at every cell where the slide differs, with the window
and the arithmetic that gives the right number (:mod:`cnnkit.explain.slide_checks`).

>>> result = explain_example("rgb-conv-padded")
>>> [(d["row"], d["col"], d["slide_shows"], d["correct"]) for d in result.slide_differences]
[(1, 0, 370, -370), (1, 1, 11, 2), (2, 0, 393, -393), (4, 1, -158, -152)]
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from cnnkit import arith
from cnnkit.explain import slide_checks as S
from cnnkit.explain.example_format import OUTPUT_SIZE_ID, POOL_EXPECTED, POOL_PRINTED, check_examples, merge_examples
from cnnkit.explain.matrices import inline, number, to_lists, to_nested
from cnnkit.explain.param_examples import PARAMETER_EXAMPLES
from cnnkit.explain.results import Check, ExampleResult
from cnnkit.explain.steps import Explanation, explain_conv, explain_pool
from cnnkit.explain.volume import VolumeExplanation, explain_conv_volume
from cnnkit.fileio import loads_json

# seed_examples.json stays identical to ../shared/fixtures; deck_examples.json holds the decks' further examples
PACKAGED = ("seed_examples.json", "deck_examples.json")
POOL_VERBS = {"max": "max-pools", "avg": "average-pools", "min": "min-pools"}


def _packaged(name: str) -> dict[str, Any]:
    text = (resources.files("cnnkit") / "data_files" / name).read_text(encoding="utf-8")
    return check_examples(loads_json(text), f"cnnkit/data_files/{name}")


@cache
def load_examples() -> dict[str, Any]:
    """The packaged examples, parsed and checked once: the transcribed fixtures, then the decks' further examples."""
    return merge_examples(*(_packaged(name) for name in PACKAGED))


def example_names(examples: dict[str, Any] | None = None) -> list[str]:
    """Every example :func:`explain_example` runs, in order: convolutions, poolings, the output-size cases, parameter counts.

    ``examples`` is a checked set (:func:`load_example_file`); the packaged slides' examples by default.
    """
    data = load_examples() if examples is None else examples
    return ([e["id"] for e in data.get("convolution", [])] + [e["id"] for e in data.get("pooling", [])]
            + ([OUTPUT_SIZE_ID] if "output_size" in data else []) + [e["id"] for e in data.get("parameters", [])])


def _find(name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for kind in ("convolution", "pooling", "parameters"):
        for example in data.get(kind, []):
            if example["id"] == name:
                return kind, example
    if name == OUTPUT_SIZE_ID and "output_size" in data:
        return "output_size", data["output_size"]
    names = example_names(data)
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ValueError(f"unknown example.{hint} Known in {data.get('origin', 'the set')}: {', '.join(names)}. Received: name={name!r}")


def _conv(example: dict[str, Any], input: Any = None, kernel: Any = None) -> Explanation | VolumeExplanation:
    """The example's convolution, or the same with the input or kernel as another slide prints it."""
    x = example["input"] if input is None else input
    w = example["kernel"] if kernel is None else kernel
    if np.ndim(x) == 2 and np.ndim(w) == 2:
        return explain_conv(x, w, example["stride"], example["padding"], float(example.get("bias", 0)))
    return explain_conv_volume(x, w, example.get("bias", 0), example["stride"], example["padding"])


def _convolution(example: dict[str, Any]) -> ExampleResult:
    explanation = _conv(example)
    checks = [Check("output", to_nested(explanation.output), example["expected"], as_printed=True)]
    printed = S.printed_cells(example.get("slide_shows"), example.get("slide_cells"))
    variants = []
    for variant in example.get("slide_variants", []):
        what = "input" if "input" in variant else "kernel"
        other = _conv(example, **{what: variant[what]})
        variants.append(S.variant_finding(variant, example[what], explanation.output, other.output, printed))
    return ExampleResult(example["id"], example["source"], "convolution", [explanation], checks,
                         S.conv_differences(explanation.steps, printed), example.get("slide_error"),
                         notes=list(example.get("notes", [])), slide_variants=variants, printed_count=len(printed))


def _input_source(example: dict[str, Any], data: dict[str, Any]) -> dict[str, Any] | None:
    """The convolution example whose output a pooling example starts from: ``input_from``, else the one whose
    slide printed exactly this input (a misprint reused as the next slide's input)."""
    for conv in data.get("convolution", []):
        if conv["id"] == example.get("input_from") or ("input_from" not in example and conv.get("slide_shows") == example["input"]):
            return conv
    return None


def _pooling(example: dict[str, Any], data: dict[str, Any]) -> ExampleResult:
    size, stride, padding, ceil = example["size"], example["stride"], example["padding"], example.get("ceil_mode", False)
    source = _input_source(example, data)
    # a slide that pools an earlier slide's result: what the correctly computed map gives
    correct_input = np.asarray(example["input"] if source is None else source["expected"], dtype=np.float64)
    chained = not np.array_equal(correct_input, np.asarray(example["input"], dtype=np.float64))
    explanations: list[Explanation | VolumeExplanation] = []
    checks: list[Check] = []
    found: list[dict[str, Any]] = []
    corrected: list[Explanation] = []
    printed_count = 0
    for mode, key in POOL_EXPECTED.items():
        if key not in example:
            continue
        own = explain_pool(example["input"], size, stride, mode, padding, ceil)
        explanations.append(own)
        checks.append(Check(f"{mode} pooling", to_lists(own.output), example[key], as_printed=True))
        correct = explain_pool(correct_input, size, stride, mode, padding, ceil) if chained else own
        if chained:
            corrected.append(correct)
        if POOL_PRINTED[mode] in example:
            printed = S.printed_cells(example[POOL_PRINTED[mode]])
            printed_count += len(printed)
            found += S.pool_differences(own, correct, printed, mode)
    if "expected_flattened" in example:
        pooled = explanations[0].output  # max pooling comes first: (H_out, W_out)
        checks.append(Check(f"flattened, row by row ({pooled.shape[0]}x{pooled.shape[1]} -> {pooled.size})",
                            [number(v) for v in pooled.ravel()], example["expected_flattened"], as_printed=True))
    notes = list(example.get("notes", []))
    if source is not None and chained:
        wrong = "; ".join(f"{i},{j}" for i, j in np.argwhere(correct_input != np.asarray(example["input"])))
        for correct in corrected:
            notes.append(f"the input is the slide's misprinted feature map from {source['id']} (wrong at row,column {wrong}); "
                         f"the correctly computed map [{inline(correct.input)}] {POOL_VERBS[correct.parameters['mode']]} to "
                         f"{to_lists(correct.output)}")
    return ExampleResult(example["id"], example["source"], "pooling", [*explanations, *corrected], checks, found,
                         example.get("slide_error"), notes=notes, printed_count=printed_count)


def _output_size(section: dict[str, Any]) -> ExampleResult:
    checks = []
    for case in section["cases"]:
        worked = arith.conv_output_worked(case["n"], case["f"], case["s"], case["p"])[0]
        checks.append(Check(f"n={case['n']}, f={case['f']}, p={case['p']}, s={case['s']}: {worked.formula}", worked.value, case["expected"]))
    return ExampleResult(OUTPUT_SIZE_ID, section["source"], "output_size", [], checks)


def explain_example(name: str, examples: dict[str, Any] | None = None) -> ExampleResult:
    """Recompute one example by id (see :func:`example_names`); unknown ids suggest the nearest.

    ``examples`` is a checked set from :func:`load_example_file`; the packaged slides' examples by default.
    """
    data = load_examples() if examples is None else examples
    kind, example = _find(name, data)
    if kind == "convolution":
        return _convolution(example)
    if kind == "pooling":
        return _pooling(example, data)
    if kind == "parameters":
        return PARAMETER_EXAMPLES[name](example)
    return _output_size(example)


def explain_examples(examples: dict[str, Any] | None = None) -> list[ExampleResult]:
    """Every example of ``examples`` (the packaged slides' by default), recomputed."""
    data = load_examples() if examples is None else examples
    return [explain_example(name, data) for name in example_names(data)]
