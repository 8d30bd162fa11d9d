"""Exercises with their worked answers, drawn at random from a seed: convolution, pooling, parameters, shapes.

Every answer comes from the code that explains the same computation, so it is
right by construction: :func:`cnnkit.explain.explain_conv` and
:func:`~cnnkit.explain.explain_pool` work the matrices cell by cell,
:func:`~cnnkit.explain.explain_params` counts the parameters, and
:mod:`cnnkit.arith` gives every output size with its formula. The same topic
and seed always give the same quiz.

    ======  =========================================================================
    topic   an exercise asks
    ======  =========================================================================
    conv    the output size and values of a small matrix cross-correlated with a kernel
    pool    the output of max or average pooling a small matrix (and each winner)
    params  the learnable parameters of a convolution, 1x1, depthwise, separable or dense layer
    shapes  the output shape of every layer of a short layer table (conv, pooling, flatten)
    ======  =========================================================================

>>> quiz = make_quiz("params", seed=0, count=2)
>>> [e.number for e in quiz.exercises], quiz == make_quiz("params", seed=0, count=2)
([1, 2], True)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnkit import arith
from cnnkit.explain.matrices import grid, to_lists
from cnnkit.explain.params import explain_params
from cnnkit.explain.steps import explain_conv, explain_pool

TOPICS = ("conv", "pool", "params", "shapes")
TOPIC_NAMES = {"conv": "convolution", "pool": "pooling", "params": "parameters", "shapes": "output shapes"}
MAX_COUNT = 50
MAX_OUTPUT_SIDE = 4  # a hand-worked matrix exercise has at most 4x4 output cells


@dataclass(frozen=True)
class Exercise:
    """One question, the numbers it gives, and its answer worked out."""

    number: int  # 1, 2, ... within its quiz
    topic: str
    question: str  # one paragraph
    given: dict[str, Any]  # the question's numbers, JSON-ready: enough to recompute the answer
    answer: dict[str, Any]  # JSON-ready, e.g. {"output_size": [2, 2], "output": [[...]]} or {"total": 280}
    summary: str  # the answer in one line
    working: list[str]  # how to get there, one line per step
    shown: dict[str, Any] = field(default_factory=dict)  # matrices (or a layer table) printed under the question

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "topic": self.topic, "question": self.question, "given": self.given,
                "shown": self.shown, "answer": self.answer, "summary": self.summary, "working": self.working}


@dataclass(frozen=True)
class Quiz:
    """``count`` exercises on one topic, drawn from ``seed``."""

    topic: str
    seed: int
    exercises: tuple[Exercise, ...]

    @property
    def title(self) -> str:
        return f"Quiz: {TOPIC_NAMES[self.topic]} (seed {self.seed}, {len(self.exercises)} exercise(s))"

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "seed": self.seed, "count": len(self.exercises), "title": self.title,
                "exercises": [e.to_dict() for e in self.exercises]}


def _matrix(rng: random.Random, rows: int, cols: int, values: list[int]) -> list[list[int]]:
    return [[rng.choice(values) for _ in range(cols)] for _ in range(rows)]


def _side(pair: list[int] | tuple[int, int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def _conv(rng: random.Random, number: int) -> Exercise:
    """A 3x3..6x6 matrix of 0-9 and a 2x2 or 3x3 kernel of -1..2, stride 1 or 2, padding 0 or 1, maybe a bias."""
    while True:
        h, w, k = rng.randint(3, 6), rng.randint(3, 6), rng.choice([2, 3])
        stride, padding = rng.choice([1, 1, 2]), rng.choice([0, 0, 1])
        try:
            out = arith.conv_output_size((h, w), k, stride, padding)
        except ValueError:  # the kernel does not fit: draw again
            continue
        if max(out) <= MAX_OUTPUT_SIDE:
            break
    x, kernel = _matrix(rng, h, w, list(range(10))), _matrix(rng, k, k, [-1, 0, 1, 2])
    bias = rng.choice([0, 0, 1, -2])
    e = explain_conv(x, kernel, stride, padding, float(bias))
    settings = f"stride {stride}, padding {padding}" + (" (a border of zeros)" if padding else "") + (f", bias {bias}" if bias else "")
    question = (f"Cross-correlate the {h}x{w} input X with the {k}x{k} kernel K, as a CNN's convolution layer does "
                f"(the kernel is not flipped): {settings}. What size is the output, and what are its values?")
    size = [worked.value for worked in e.output_size]
    working = [f"output {side}: {worked.formula}" for side, worked in zip(arith.SIDES, e.output_size, strict=True)]
    working += [f"[{s['row']},{s['col']}] = {s['expression']}" for s in e.steps]
    return Exercise(number, "conv", question, {"input": x, "kernel": kernel, "stride": stride, "padding": padding, "bias": bias},
                    {"output_size": size, "output": to_lists(e.output)}, f"a {_side(size)} output", working,
                    {"X": x, "K": kernel})


def _pool(rng: random.Random, number: int) -> Exercise:
    """A 4x4..6x6 matrix of 0-9, max or average pooling (average over 2x2 windows only: quarters are easy to add)."""
    while True:
        h, w = rng.randint(4, 6), rng.randint(4, 6)
        mode = rng.choice(["max", "max", "avg"])
        size = 2 if mode == "avg" else rng.choice([2, 2, 3])
        stride = rng.choice([size, size, 1])
        padding = rng.choice([0, 0, 0, 1]) if size >= 2 else 0
        try:
            out = arith.pool_output_size((h, w), size, stride, padding)
        except ValueError:
            continue
        if max(out) <= MAX_OUTPUT_SIDE:
            break
    x = _matrix(rng, h, w, list(range(10)))
    e = explain_pool(x, size, stride, mode, padding)
    name = {"max": "max pooling", "avg": "average pooling"}[mode]
    pads = {"max": " (padded cells are -inf: they never win)",
            "avg": " (padded cells are 0 and count in the divisor, as torch's AvgPool2d)"}[mode]
    question = (f"Apply {name} with {size}x{size} windows and stride {stride}" + (f", padding {padding}{pads}" if padding else "")
                + f" to the {h}x{w} input X. What is the output?" + (" Which cell wins each window?" if mode == "max" else ""))
    working = [f"output {side}: {worked.formula}" for side, worked in zip(arith.SIDES, e.output_size, strict=True)]
    for s in e.steps:
        at = f" (input row {s['winner'][0]}, column {s['winner'][1]})" if "winner" in s else ""
        working.append(f"[{s['row']},{s['col']}] = {s['expression']}{at}")
    answer: dict[str, Any] = {"output_size": [worked.value for worked in e.output_size], "output": to_lists(e.output)}
    if mode == "max":
        answer["winners"] = [s["winner"] for s in e.steps]
    return Exercise(number, "pool", question, {"input": x, "size": size, "stride": stride, "mode": mode, "padding": padding},
                    answer, f"a {_side(answer['output_size'])} output", working, {"X": x})


def _params(rng: random.Random, number: int) -> Exercise:
    """One layer as the slides ask: a convolution (1x1 too), depthwise, depthwise-separable or dense layer."""
    layer = rng.choice(["conv", "conv", "conv1x1", "depthwise", "separable", "dense"])
    bias = rng.random() > 0.15
    without = "" if bias else " The layer has no biases."
    if layer == "dense":
        n_in, units = rng.choice([84, 120, 256, 400, 784, 1024, 4096]), rng.choice([10, 84, 120, 256, 1000])
        c = explain_params("dense", in_features=n_in, units=units, bias=bias)
        question = f"A fully connected layer maps {n_in} inputs to {units} units. How many learnable parameters does it have?{without}"
        given: dict[str, Any] = {"layer": "dense", "in_features": n_in, "units": units, "bias": bias}
    else:
        c_in = rng.choice([16, 32, 64, 128]) if layer in ("depthwise", "separable") else rng.choice([1, 3, 3, 16, 32, 64])
        side = rng.choice([28, 32, 64, 224])
        k = 1 if layer == "conv1x1" else rng.choice([3, 3, 5] if layer != "conv" else [3, 5, 7])
        filters = rng.choice([6, 10, 16, 32, 64, 128, 256])
        multiplier = rng.choice([1, 1, 2]) if layer in ("depthwise", "separable") else 1
        kind = "conv" if layer == "conv1x1" else layer
        c = explain_params(kind, in_channels=c_in, filters=None if kind == "depthwise" else filters, kernel=k,
                           multiplier=multiplier, bias=bias)
        volume = f"The input volume is {side}x{side}x{c_in}."
        question = {
            "conv": f"{volume} A convolution layer has {filters} filters of {k}x{k}x{c_in}. How many learnable parameters "
                    f"(weights + biases) does it have, per filter and in total?",
            "conv1x1": f"{volume} A 1x1 convolution maps it to {filters} channels. How many learnable parameters does it have?",
            "depthwise": f"{volume} A depthwise convolution has {multiplier} {k}x{k} filter(s) per input channel. How many "
                         f"learnable parameters does it have?",
            "separable": f"{volume} A depthwise-separable convolution ({k}x{k} depthwise, multiplier {multiplier}, no bias "
                         f"there; then 1x1 to {filters} channels) replaces a standard {k}x{k} convolution. How many learnable "
                         f"parameters does each have?",
        }[layer] + without
        given = {"layer": kind, "in_channels": c_in, "kernel": k, "multiplier": multiplier, "bias": bias, "input_side": side}
        if kind != "depthwise":
            given["filters"] = filters
    answer: dict[str, Any] = {"total": c.output}
    if "standard" in c.extra:
        answer["standard"] = c.extra["standard"]["total"]
    working = [f"{s['label']}: {s['expression']}" for s in c.steps] + [f"note: {n}" for n in c.notes]
    summary = f"{c.output:,} parameters" + (f" (a standard convolution: {answer['standard']:,})" if "standard" in answer else "")
    return Exercise(number, "params", question, given, answer, summary, working)


def _conv_layer(rng: random.Random, side: int) -> dict[str, Any]:
    k = rng.choice([3, 3, 5] if side < 64 else [3, 5, 7, 11])
    stride = 4 if k == 11 else rng.choice([1, 1, 2])
    padding = rng.choice([0, (k - 1) // 2, 1])
    return {"kind": "conv", "filters": rng.choice([6, 8, 16, 32, 64]), "kernel": k, "stride": stride, "padding": padding}


def _layer_text(layer: dict[str, Any]) -> str:
    """The layer in the layer-table format (``cnnkit summary`` reads it)."""
    if layer["kind"] == "conv":
        extra = (f" stride={layer['stride']}" if layer["stride"] != 1 else "") + (f" padding={layer['padding']}" if layer["padding"] else "")
        return f"conv {layer['filters']} {layer['kernel']}x{layer['kernel']}{extra}"
    if layer["kind"] == "flatten":
        return "flatten"
    stride = f" stride={layer['stride']}" if layer["stride"] != layer["size"] else ""
    return f"{layer['kind']} {layer['size']}x{layer['size']}{stride}"


def _shape_step(layer: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """The shape after ``layer`` and the working, from :mod:`cnnkit.arith`; an empty output raises ``ValueError``."""
    if layer["kind"] == "flatten":
        features = shape[0] * shape[1] * shape[2]
        return (features,), f"flatten: {shape[0]}*{shape[1]}*{shape[2]} = {features}"
    if layer["kind"] == "conv":
        worked = arith.conv_output_worked(shape[1:], layer["kernel"], layer["stride"], layer["padding"])
        channels = layer["filters"]
    else:
        worked = arith.pool_output_worked(shape[1:], layer["size"], layer["stride"])
        channels = shape[0]
    out = (channels, worked[0].value, worked[1].value)
    depth = f"{channels} filters" if layer["kind"] == "conv" else "pooling keeps the channels"
    return out, f"{_layer_text(layer)}: height {worked[0].formula}; width {worked[1].formula}; {depth} -> {'x'.join(map(str, out))}"


def _shapes(rng: random.Random, number: int) -> Exercise:
    """An input ``C x H x W`` and two to four convolution and pooling layers, often ending in ``flatten``."""
    while True:
        side = rng.choice([28, 32, 32, 64, 96, 227])
        shape: tuple[int, ...] = (rng.choice([1, 3]), side, side)
        layers: list[dict[str, Any]] = []
        for _ in range(rng.randint(2, 4)):
            if layers and layers[-1]["kind"] == "conv" and rng.random() < 0.6:
                size = rng.choice([2, 2, 3])
                layers.append({"kind": rng.choice(["maxpool", "maxpool", "avgpool"]), "size": size, "stride": 2})
            else:
                layers.append(_conv_layer(rng, side))
        if rng.random() < 0.6:
            layers.append({"kind": "flatten"})
        start, shapes, working = shape, [], []
        try:
            for layer in layers:
                shape, line = _shape_step(layer, shape)
                shapes.append(list(shape))
                working.append(line)
        except ValueError:  # a layer would leave nothing: draw again
            continue
        break
    table = "\n".join([f"input {'x'.join(map(str, start))}", *(_layer_text(layer) for layer in layers)])
    question = (f"A {start[1]}x{start[2]} input with {start[0]} channel(s) goes through the layers below (conv FILTERS "
                f"KxK, stride 1 and padding 0 unless given; pooling's stride is its window unless given). What is the "
                f"output shape (channels x height x width) after each layer?")
    working.append("check: the table is in cnnkit's layer-table format; `cnnkit summary FILE` works it too")
    return Exercise(number, "shapes", question, {"input_shape": list(start), "layers": layers}, {"shapes": shapes},
                    " -> ".join("x".join(map(str, s)) for s in shapes), working, {"layers": table})


GENERATORS: dict[str, Callable[[random.Random, int], Exercise]] = {"conv": _conv, "pool": _pool, "params": _params,
                                                                     "shapes": _shapes}


def make_quiz(topic: str, seed: int = 0, count: int = 5) -> Quiz:
    """``count`` exercises on ``topic`` (one of :data:`TOPICS`) drawn from ``seed``: the same arguments, the same quiz."""
    if topic not in TOPICS:
        raise ValueError(f"`topic` must be one of {', '.join(TOPICS)}. Received: topic={topic!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"`count` must be an int from 1 to {MAX_COUNT}. Received: count={count!r}")
    rng = random.Random(f"cnnkit quiz {topic} {seed}")  # a string seed: the same on every platform and Python run
    return Quiz(topic, seed, tuple(GENERATORS[topic](rng, number) for number in range(1, count + 1)))


def _shown_lines(shown: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, value in shown.items():
        if isinstance(value, str):
            lines += [f"  {row}" for row in value.splitlines()]
        else:
            lines += [f"  {name} ({len(value)}x{len(value[0])}):", *grid(_array(value), "    ")]
    return lines


def _array(value: list[list[float]]) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def render_quiz(quiz: Quiz) -> str:
    """The quiz as text: every question first, then every answer with its working."""
    lines = [quiz.title, ""]
    for e in quiz.exercises:
        lines += [f"Exercise {e.number}. {e.question}", *_shown_lines(e.shown), ""]
    lines += ["=" * 40, "Answers", ""]
    for e in quiz.exercises:
        lines.append(f"Exercise {e.number}: {e.summary}")
        if "output" in e.answer:
            lines += [*grid(_array(e.answer["output"]), "    ")]
        lines += [f"  {line}" for line in e.working] + [""]
    return "\n".join(lines).rstrip() + "\n"
