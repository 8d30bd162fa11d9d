"""Quiz answers checked against PyTorch: conv and pool outputs with torch.nn.functional, parameter counts with
``sum(p.numel())`` of the built layer, shapes with a real forward pass; the same seed gives the same quiz."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.cli import explain_quiz
from cnnkit.explain import quiz as Q
from cnnkit.explain.quiz_html import quiz_html, write_quiz_html

SEEDS = range(6)


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)[None, None]  # (1, 1, H, W)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_answers_are_torch_conv2d(seed: int) -> None:
    for e in Q.make_quiz("conv", seed, 5).exercises:
        g = e.given
        y = F.conv2d(_t(g["input"]), _t(g["kernel"]), torch.tensor([float(g["bias"])], dtype=torch.float64),
                     stride=g["stride"], padding=g["padding"])[0, 0]
        assert e.answer["output_size"] == list(y.shape)
        assert e.answer["output"] == y.tolist()
        assert len(e.working) == 2 + y.numel()  # the two size formulas, then one sum per cell


@pytest.mark.parametrize("seed", SEEDS)
def test_pool_answers_are_torch_pooling_and_its_winners(seed: int) -> None:
    for e in Q.make_quiz("pool", seed, 5).exercises:
        g = e.given
        x = _t(g["input"])
        if g["mode"] == "max":
            y, indices = F.max_pool2d(x, g["size"], g["stride"], g["padding"], return_indices=True)
            width = len(g["input"][0])
            assert e.answer["winners"] == [[int(i) // width, int(i) % width] for i in indices.flatten()]
        else:
            y = F.avg_pool2d(x, g["size"], g["stride"], g["padding"])  # count_include_pad, as the question says
        assert e.answer["output"] == y[0, 0].tolist()  # quarters of whole numbers: exact in float64
        assert e.answer["output_size"] == list(y.shape[2:])


def _layer(g: dict[str, Any]) -> tuple[nn.Module, nn.Module | None]:
    """The layer the exercise describes, built in torch; and the standard convolution it is compared with."""
    if g["layer"] == "dense":
        return nn.Linear(g["in_features"], g["units"], bias=g["bias"]), None
    c, k, m = g["in_channels"], g["kernel"], g["multiplier"]
    if g["layer"] == "conv":
        return nn.Conv2d(c, g["filters"], k, bias=g["bias"]), None
    if g["layer"] == "depthwise":
        return nn.Conv2d(c, c * m, k, groups=c, bias=g["bias"]), None
    separable = nn.Sequential(nn.Conv2d(c, c * m, k, groups=c, bias=False), nn.Conv2d(c * m, g["filters"], 1, bias=g["bias"]))
    return separable, nn.Conv2d(c, g["filters"], k, bias=g["bias"])


def test_params_answers_are_the_built_layers_parameter_counts() -> None:
    kinds = set()
    for seed in range(12):
        for e in Q.make_quiz("params", seed, 5).exercises:
            layer, standard = _layer(e.given)
            kinds.add((e.given["layer"], e.given.get("kernel"), e.given["bias"]))
            assert e.answer["total"] == sum(p.numel() for p in layer.parameters())
            if standard is not None:
                assert e.answer["standard"] == sum(p.numel() for p in standard.parameters())
    assert {k[0] for k in kinds} == {"conv", "dense", "depthwise", "separable"}
    assert ("conv", 1, True) in kinds or ("conv", 1, False) in kinds  # a 1x1 convolution among them
    assert {k[2] for k in kinds} == {True, False}  # with and without biases


def _build(given: dict[str, Any]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = given["input_shape"][0]
    for layer in given["layers"]:
        if layer["kind"] == "conv":
            layers.append(nn.Conv2d(channels, layer["filters"], layer["kernel"], layer["stride"], layer["padding"]))
            channels = layer["filters"]
        elif layer["kind"] == "flatten":
            layers.append(nn.Flatten())
        else:
            pool = nn.MaxPool2d if layer["kind"] == "maxpool" else nn.AvgPool2d
            layers.append(pool(layer["size"], layer["stride"]))
    return layers


@pytest.mark.parametrize("seed", SEEDS)
def test_shapes_answers_are_a_forward_pass(seed: int) -> None:
    for e in Q.make_quiz("shapes", seed, 4).exercises:
        x = torch.zeros(1, *e.given["input_shape"])
        seen = []
        with torch.no_grad():
            for layer in _build(e.given):
                x = layer(x)
                seen.append(list(x.shape[1:]))
        assert e.answer["shapes"] == seen
        assert e.shown["layers"].splitlines()[0] == "input " + "x".join(map(str, e.given["input_shape"]))


def test_the_same_seed_gives_the_same_quiz_and_another_seed_another() -> None:
    for topic in Q.TOPICS:
        first = Q.make_quiz(topic, 7, 4).to_dict()
        assert Q.make_quiz(topic, 7, 4).to_dict() == first
        assert Q.make_quiz(topic, 8, 4).to_dict() != first
        assert Q.make_quiz(topic, 7, 2).to_dict()["exercises"] == first["exercises"][:2]  # count only cuts the list


def test_text_puts_every_question_before_the_answers() -> None:
    quiz = Q.make_quiz("conv", 3, 3)
    text = Q.render_quiz(quiz)
    answers = text.index("\nAnswers\n")
    for e in quiz.exercises:
        assert text.index(f"Exercise {e.number}. {e.question}") < answers
        assert text.index(e.working[-1]) > answers
    assert text.startswith("Quiz: convolution (seed 3, 3 exercise(s))")


class _Text(HTMLParser):
    """The page's text in reading order, and the section each piece is in."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.pieces: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("class") or ""

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.pieces.append((self.section, data))


def test_html_questions_first_then_answers_after_a_page_break(tmp_path: Path) -> None:
    quiz = Q.make_quiz("pool", 2, 3)
    page = write_quiz_html(quiz, tmp_path / "quiz.html").read_text()
    assert page == quiz_html(quiz)
    assert re.search(r"\.answers \{ break-before: page; page-break-before: always; \}", page)
    parser = _Text()
    parser.feed(page)
    sections = [section for section, _ in parser.pieces]
    assert "answers" in sections and sections.index("answers") > max(i for i, s in enumerate(sections) if s == "questions")
    in_questions = " ".join(text for section, text in parser.pieces if section == "questions")
    in_answers = " ".join(text for section, text in parser.pieces if section == "answers")
    for e in quiz.exercises:
        assert e.question in in_questions and e.question not in in_answers
        assert e.working[-1] in in_answers and e.working[-1] not in in_questions
    with pytest.raises(FileNotFoundError, match=r"`--html`: the folder .* does not exist"):
        write_quiz_html(quiz, tmp_path / "missing" / "quiz.html")


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"`topic` must be one of conv, pool, params, shapes. Received: topic='padding'"):
        Q.make_quiz("padding")
    with pytest.raises(ValueError, match=r"`count` must be an int from 1 to 50. Received: count=0"):
        Q.make_quiz("conv", 0, 0)
    with pytest.raises(ValueError, match=r"`seed` must be a non-negative int. Received: seed=-1"):
        Q.make_quiz("conv", -1)
    assert explain_quiz.TOPICS == Q.TOPICS  # the command's list, kept beside it so that --help does not import numpy
