"""cnnkit.summary on layer tables and on hand-written modules."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnkit
from cnnkit import layers as L
from cnnkit import spec
from cnnkit.summarize import summary

from .test_spec import EVERY_WORD


class Residual(nn.Module):
    """A ResNet basic block: the receptive field is no longer one chain."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class SmallResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.blocks = nn.Sequential(Residual(8), Residual(8))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
        self.scale = nn.Parameter(torch.ones(1))  # held by the model itself, in no row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x))) * self.scale


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


def _lenet() -> tuple[nn.Module, tuple[int, ...]]:
    table = spec.load_shipped("lenet_slides")
    return spec.build(table), table.input_shape


def test_lenet_rows_formulas_and_the_slide_note() -> None:
    model, shape = _lenet()
    s = cnnkit.summary(model, shape)
    assert s.total_params == 62006 == sum(p.numel() for p in model.parameters())
    conv1 = s.rows[0]
    assert (conv1.input_shape, conv1.output_shape, conv1.weights, conv1.biases) == ((3, 32, 32), (6, 28, 28), 450, 6)
    assert conv1.facts.formulas == {"output": "(32 + 2*0 - 5)/1 + 1 = 28", "params": "(5*5*3 + 1)*6 = 456"}
    assert (conv1.facts.kernel, conv1.facts.stride, conv1.facts.padding) == ("5x5", "1", "0")
    dense1 = next(r for r in s.rows if r.name == "dense1")
    assert (dense1.weights, dense1.biases, dense1.facts.formulas["params"]) == (48000, 120, "(400 + 1)*120 = 48120")
    assert any("61,795" in note and "one bias per output unit" in note for note in s.notes)
    text = s.to_text()
    assert "(32 + 2*0 - 5)/1 + 1 = 28" in text and "Total params: 62,006" in text


def test_lenet_receptive_field_and_jump() -> None:
    model, shape = _lenet()
    s = summary(model, shape)
    fields = {r.name: (r.receptive_field, r.jump) for r in s.rows}
    assert fields["conv1"] == ((5, 5), (1, 1))
    assert fields["maxpool1"] == ((6, 6), (2, 2))
    assert fields["conv2"] == ((14, 14), (2, 2))
    assert fields["maxpool2"] == ((16, 16), (4, 4))
    assert fields["dense1"][0] == "all"


@pytest.mark.parametrize("table", ["lenet_slides", "keras_slides"])
def test_macs_equal_torch_flop_counter(table: str) -> None:
    parsed = spec.load_shipped(table)
    model = spec.build(parsed).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *parsed.input_shape))
    assert summary(model, parsed.input_shape).total_macs == counter.get_total_flops() // 2


def _models() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    every = spec.parse(EVERY_WORD)
    frozen = spec.build(spec.load_shipped("lenet_slides"))
    for p in frozen[0].parameters():
        p.requires_grad_(False)
    return [
        ("every-word", spec.build(every), every.input_shape),
        ("keras", spec.build(spec.load_shipped("keras_slides")), (1, 150, 150)),
        ("resnet", SmallResNet(), (3, 16, 16)),
        ("shared", Shared(), (4, 8, 8)),
        ("frozen", frozen, (3, 32, 32)),
        ("single-layer", nn.Conv2d(3, 4, 3), (3, 8, 8)),
        ("tf-same", nn.Sequential(L.Conv2dSame(3, 8, 3, 2), L.SeparableConv2d(8, 16, 3, 2, "same")), (3, 15, 15)),
    ]


@pytest.mark.parametrize(("name", "model", "shape"), _models(), ids=[m[0] for m in _models()])
def test_totals_equal_the_parameters_of_any_model(name: str, model: nn.Module, shape: tuple[int, ...]) -> None:
    s = summary(model, shape)
    params = list(model.parameters())
    assert s.total_params == sum(p.numel() for p in params)
    assert s.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    assert s.non_trainable_params == s.total_params - s.trainable_params
    assert s.param_bytes == sum(p.numel() * p.element_size() for p in params)
    for row in s.rows:  # every formula shown agrees with the shape torch produced
        if "output" in row.facts.formulas and not row.facts.formulas["output"].startswith("height"):
            assert row.facts.formulas["output"].endswith(f"= {row.output_shape[1]}")  # type: ignore[index]


def test_branches_shared_modules_and_stray_parameters_are_explained() -> None:
    s = summary(SmallResNet(), (3, 16, 16))
    fields = {r.name: r.receptive_field for r in s.rows}
    # by hand: the 3x3 stem sees 3; each 3x3 conv adds 2; a block's sum sees the larger of its path and its input
    assert [fields[f"blocks.{i}.conv{j}"] for i in (0, 1) for j in (1, 2)] == [(5, 5), (7, 7), (9, 9), (11, 11)]
    assert [(r.name, r.receptive_field) for r in s.rows if r.join] == [
        ("add (skip from blocks.0's input)", (7, 7)), ("add (skip from blocks.1's input)", (11, 11))]
    assert any("1 parameters belong to no row" in n for n in s.notes)
    assert any("buffer values" in n for n in s.notes)
    shared = summary(Shared(), (4, 8, 8))
    assert [(r.name, r.call, r.label, r.params) for r in shared.rows] == [("conv", 1, "conv", 148),
                                                                          ("conv", 2, "conv (call 2)", 0)]
    assert shared.rows[1].facts.notes[0] == ("shared: the same Conv2d as row 'conv', called again; its 148 parameters "
                                             "are counted there")


def test_depth_collapses_containers_but_keeps_their_macs() -> None:
    s = summary(SmallResNet(), (3, 16, 16), depth=1)
    assert [r.name for r in s.rows] == ["stem", "blocks", "head"]
    assert sum(r.params for r in s.rows) == s.total_params - 1
    deep = summary(SmallResNet(), (3, 16, 16), depth=3)
    assert "blocks.0.conv1" in [r.name for r in deep.rows]
    assert s.total_macs == deep.total_macs > 0
    assert s.rows[1].facts.macs == sum(r.facts.macs for r in deep.rows if r.name.startswith("blocks."))


def test_frozen_layers_are_marked_and_modes_restored() -> None:
    model = spec.build(spec.load_shipped("lenet_slides"))
    for p in model[0].parameters():
        p.requires_grad_(False)
    model.train()
    model[1].eval()
    s = summary(model, (3, 32, 32))
    assert s.rows[0].trainable == "no" and s.rows[3].trainable == "yes"
    assert s.trainable_params == 62006 - 456
    assert model.training and not model[1].training


def test_tf_same_padding_is_shown() -> None:
    s = summary(nn.Sequential(L.Conv2dSame(3, 8, 3, 2)), (3, 224, 224))
    row = s.rows[0]
    assert row.output_shape == (8, 112, 112)
    assert row.facts.padding == "same (0+1, 0+1)"
    assert row.facts.formulas["output"] == "(224 + 0 + 1 - 3)/2 + 1 = 112"


def test_json_has_the_documented_keys() -> None:
    model, shape = _lenet()
    data = json.loads(json.dumps(summary(model, shape).as_dict()))
    assert {"total_params", "trainable_params", "non_trainable_params", "total_macs", "layers"} <= set(data)
    first = data["layers"][0]
    assert {"name", "type", "input_shape", "output_shape", "params", "macs"} <= set(first)
    assert first["input_shape"] == [3, 32, 32] and first["output_shape"] == [6, 28, 28]
    assert data["layers"][7]["output_shape"] == [120]


def test_wrong_input_names_the_failing_layer() -> None:
    model, _ = _lenet()
    with pytest.raises(ValueError, match=r"cannot take an input of shape 3x64x64: the forward pass failed in layer 'dense1'"):
        summary(model, (3, 64, 64))
    with pytest.raises(ValueError, match=r"`input_size` must be the shape of one input"):
        summary(model, (3, 0, 32))
