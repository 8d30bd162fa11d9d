"""The slides' parameter-counting examples, recomputed layer by layer with :mod:`cnnkit.arith`.

``lenet-table`` and ``keras-summary`` rebuild the slides' tables from the shipped
layer tables (``cnnkit/tables/lenet_slides.txt``, ``keras_slides.txt``): each layer's
output shape from the table's shape check, its parameters from ``arith.conv_params``
and ``arith.dense_params``, then compare every row the slide prints. ``quiz-10-filters``,
``fc-vs-conv`` and ``fc-large-image`` are single counts. Each function takes the fixture's entry;
:data:`PARAMETER_KEYS` says which keys an entry must (and may) hold.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

from cnnkit import arith, spec
from cnnkit.explain.results import Check, ExampleResult

# the first word of a slide row's layer -> the layer table's word
SLIDE_WORDS = {"conv": "conv", "relu": "relu", "max": "maxpool", "fully": "dense", "dense": "dense",
                "dropout": "dropout", "flatten": "flatten"}


def _slide_shape(shape: tuple[int, ...]) -> str:
    """``(6, 28, 28) -> "28x28x6"``: the slides (and Keras) write height x width x channels."""
    return f"{shape[1]}x{shape[2]}x{shape[0]}" if len(shape) == 3 else "x".join(str(s) for s in shape)


def _layer_rows(table: spec.Spec) -> list[dict[str, Any]]:
    """One row per layer: output shape, activation size, weights, biases, parameters and their formula."""
    rows, shape = [], table.input_shape
    for layer, out in zip(table.layers, table.shapes, strict=True):
        a = layer.args
        count = None
        if layer.kind == "conv":
            count = arith.conv_params(shape[0], a["filters"], a["kernel"], a["groups"], a["bias"])
        elif layer.kind == "dense":
            count = arith.dense_params(shape[0], a["units"], a.get("bias", True))
        # the shipped tables hold only conv and dense layers with parameters; the rest (relu, pools, dropout...) have none
        rows.append({
            "layer": layer.source,
            "kind": layer.kind,
            "output": _slide_shape(out),
            "activation_size": prod(out),
            "weights": count.weights if count else 0,
            "biases": count.biases if count else 0,
            "params": count.total if count else 0,
            "formula": count.formula if count else "",
        })
        shape = out
    return rows


def _match(example: dict[str, Any], rows: list[dict[str, Any]]) -> list[Check]:
    """Pair each slide row with the next table row of the same kind and compare the numbers the slide gives."""
    checks, at = [], 0
    for number, slide_row in enumerate(example["layers"], start=1):
        word = str(slide_row.get("layer", "")).split()[:1] if isinstance(slide_row, dict) else []
        if not word or word[0] not in SLIDE_WORDS:
            raise ValueError(f"{example['id']}: `layers[{number - 1}].layer` must start with one of {', '.join(SLIDE_WORDS)}. "
                             f"Received: {slide_row!r}")
        kind = SLIDE_WORDS[word[0]]
        while at < len(rows) and rows[at]["kind"] != kind:  # rows the slide does not print (e.g. flatten, softmax)
            at += 1
        if at == len(rows):
            raise ValueError(f"{example['id']}: `layers[{number - 1}]` ({slide_row['layer']}) has no {kind} layer left to "
                             f"match in the shipped table. Received: {len(example['layers'])} layers")
        row = rows[at]
        row["slide_row"] = number
        keys = [key for key in ("output", "activation_size", "weights", "biases", "params") if key in slide_row]
        checks.append(Check(f"row {number}: {slide_row['layer']}", {k: row[k] for k in keys}, {k: slide_row[k] for k in keys}))
        at += 1
    return checks


def _table_example(example: dict[str, Any], table_name: str) -> ExampleResult:
    table = spec.load_shipped(table_name)
    rows = _layer_rows(table)
    checks = _match(example, rows)
    total = sum(row["params"] for row in rows)
    checks.append(Check(f"total learnable parameters ({' + '.join(str(r['params']) for r in rows if r['params'])})",
                        total, example["expected_total"]))
    differences, notes = [], [f"rebuilt from the shipped layer table {table_name!r}: shapes from its shape check, "
                              "parameters from cnnkit.arith"]
    if "slide_shows_total" in example:
        # the slide's reading: one bias per fully connected layer instead of one per unit
        slide_total = sum(r["weights"] + 1 if r["kind"] == "dense" else r["params"] for r in rows)
        for r in rows:
            if r["kind"] == "dense":
                differences.append({"row": r.get("slide_row"), "slide_shows": r["weights"] + 1, "correct": r["params"],
                                    "why": f"{r['layer']}: {r['formula']} (one bias per unit); the slide prints "
                                           f"{r['weights']} + 1 = {r['weights'] + 1} (one bias for the layer)"})
        summed = " + ".join(str(r["weights"] + 1 if r["kind"] == "dense" else r["params"]) for r in rows if r["params"])
        reproduced = "reproduces" if slide_total == example["slide_shows_total"] else "does NOT reproduce"
        notes.append(f"counting one bias per fully connected layer {reproduced} the slide's total: {summed} = {slide_total:,}; "
                     f"the correct total is {total:,}")
    return ExampleResult(example["id"], example["source"], "parameters", [], checks, differences, example.get("slide_error"),
                         table=rows, notes=notes)


def _lenet(example: dict[str, Any]) -> ExampleResult:
    return _table_example(example, "lenet_slides")


def _keras(example: dict[str, Any]) -> ExampleResult:
    return _table_example(example, "keras_slides")


def _quiz(example: dict[str, Any]) -> ExampleResult:
    # the fixture states the question in words: "10 filters of 3x3x3 on a 32x32x3 input"
    count = arith.conv_params(3, 10, 3)
    size = arith.conv_output_worked(32, 3)[0]
    notes = [f"each 3x3x3 filter has {count.weights // 10} weights and 1 bias; the input's 32x32 size does not matter (the output "
             f"is {size.value}x{size.value}x10, {size.formula})"]
    return ExampleResult(example["id"], example["source"], "parameters", [],
                         [Check(f"{example['layer']}: {count.formula}", count.total, example["expected"])], notes=notes)


def _fc_vs_conv(example: dict[str, Any]) -> ExampleResult:
    n_in, n_out = 32 * 32 * 3, 28 * 28 * 6
    dense = arith.dense_params(n_in, n_out, bias=False)  # the slide counts the weights only
    conv = arith.conv_params(3, 6, 5)
    checks = [
        Check(f"fully connected 32x32x3 = {n_in} -> 28x28x6 = {n_out}, weights: {dense.formula}", dense.weights,
              example["fully_connected_32x32x3_to_28x28x6_weights"]),
        Check(f"convolution, 6 filters of 5x5x3: {conv.formula}", conv.total, example["conv_6_filters_5x5x3_params"]),
    ]
    notes = [f"the slide writes 1,44,50,688 (Indian digit grouping) = {dense.weights:,}; the convolution needs "
             f"{dense.weights // conv.total:,} times fewer parameters, because each filter's weights are shared across "
             f"all positions and each output sees only a 5x5x3 window"]
    return ExampleResult(example["id"], example["source"], "parameters", [], checks, notes=notes)


def _fc_large_image(example: dict[str, Any]) -> ExampleResult:
    small, large = 32 * 32 * 3, 1000 * 1000 * 3
    dense = arith.dense_params(large, 1000)
    checks = [
        Check("a 32x32x3 image: 32*32*3 input values", small, example["small_image_inputs"]),
        Check("a 1000x1000x3 image: 1000*1000*3 input values", large, example["large_image_inputs"]),
        Check(f"a fully connected layer of 1000 units on it, weights: {large} inputs * 1000 units", dense.weights, example["weights"]),
    ]
    notes = [f"the slide calls the {dense.weights:,} weights 'features'; with one bias per unit the layer has "
             f"{dense.formula} parameters ({dense.total:,}): this is why images need convolutions"]
    return ExampleResult(example["id"], example["source"], "parameters", [], checks, notes=notes)


PARAMETER_EXAMPLES: dict[str, Callable[[dict[str, Any]], ExampleResult]] = {
    "fc-large-image": _fc_large_image,
    "lenet-table": _lenet,
    "keras-summary": _keras,
    "quiz-10-filters": _quiz,
    "fc-vs-conv": _fc_vs_conv,
}

# per id: the keys an entry must hold, and the keys it may hold besides id, source and slide_error
PARAMETER_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "fc-large-image": ({"small_image_inputs", "large_image_inputs", "weights"}, set()),
    "lenet-table": ({"layers", "expected_total"}, {"input", "slide_shows_total"}),
    "keras-summary": ({"layers", "expected_total"}, {"input", "slide_shows_total"}),
    "quiz-10-filters": ({"expected"}, {"layer"}),
    "fc-vs-conv": ({"fully_connected_32x32x3_to_28x28x6_weights", "conv_6_filters_5x5x3_params"}, set()),
}
