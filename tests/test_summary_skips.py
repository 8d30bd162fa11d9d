"""Skip connections in the summary: add / concat rows checked against the real tensors, receptive fields through
them against a hand count and against autograd, and the notes that apply only where they should."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnkit import models, spec
from cnnkit.summarize import summary


def _empirical_field(model: nn.Module, module: nn.Module, size: int, pre: bool = False, cells: int = 1) -> int:
    """The most rows of input pixels that reach one cell of ``module``'s output (its input with ``pre``), by
    autograd, over ``cells`` neighbouring cells at the centre (after an upsampling the field depends on the cell).

    Every weight made positive and the input all ones: every activation is positive, so no ReLU blocks a path and
    the gradient is non-zero exactly on the pixels some path connects to that cell.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    captured: list[torch.Tensor] = []
    if pre:
        handle = module.register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0]))
    else:
        handle = module.register_forward_hook(lambda _m, _i, output: captured.append(output))
    x = torch.ones(1, model.in_channels, size, size, requires_grad=True)  # type: ignore[arg-type]
    model.eval()(x)
    handle.remove()
    y = captured[0]
    widest = 0
    for offset in range(-(cells // 2), cells - cells // 2):
        cell = y.shape[2] // 2 + offset
        (grad,) = torch.autograd.grad(y[0, :, cell, y.shape[3] // 2].sum(), x, retain_graph=True)
        rows = (grad[0].abs().sum(dim=(0, 2)) > 0).nonzero()
        widest = max(widest, int(rows.max() - rows.min() + 1))
    return widest


def test_resnet_add_rows_match_the_blocks_and_the_hand_counted_fields() -> None:
    model = models.create("resnet_small", depth=8)  # one basic block per stage
    outputs = {}
    for name in ("layer1.0", "layer2.0", "layer3.0", "layer2.0.bn2"):
        model.get_submodule(name).register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
    s = summary(model, (1, 28, 28))
    joins = [r for r in s.rows if r.join]
    assert [r.name for r in joins] == ["add (skip from layer1.0's input)", "add (skip from layer2.0.downsample)",
                                       "add (skip from layer3.0.downsample)"]
    for row, block in zip(joins, ("layer1.0", "layer2.0", "layer3.0"), strict=True):
        assert row.output_shape == tuple(outputs[block].shape[1:])  # the sum has the block's shape
        assert (row.params, row.facts.macs, row.type) == (0, 0, "add")
    assert joins[1].input_shape == tuple(outputs["layer2.0.bn2"].shape[1:])
    # by hand, r_out = r_in + (k - 1)*j_in: stem 3; layer1: 5, 7 (the identity: 3) -> 7;
    # layer2 (stride 2): 7 + 2*1 = 9, 9 + 2*2 = 13, the 1x1/2 shortcut keeps 7 -> max 13 at jump 2;
    # layer3: 13 + 2*2 = 17, 17 + 2*4 = 25 -> 25 at jump 4
    assert [(r.receptive_field, r.jump) for r in joins] == [((7, 7), (1, 1)), ((13, 13), (2, 2)), ((25, 25), (4, 4))]
    assert joins[1].facts.formulas["receptive field"] == "max(13, 7) = 13"
    assert {r.label: r.receptive_field for r in s.rows}["layer3.0.relu (call 2)"] == (25, 25)
    assert s.rows[-1].receptive_field == "all"


def test_resnet_stage_field_equals_autograd() -> None:
    model = models.create("resnet_small", depth=8)
    fields = {r.name: r.receptive_field for r in summary(model, (1, 64, 64)).rows if r.join}
    for stage, join in (("layer1", "add (skip from layer1.0's input)"), ("layer2", "add (skip from layer2.0.downsample)"),
                        ("layer3", "add (skip from layer3.0.downsample)")):
        assert fields[join] == (_empirical_field(model, model.get_submodule(stage), 64),) * 2, stage


def test_unet_concat_rows_match_the_tensors_and_autograd() -> None:
    model = models.create("unet", width=2)
    for down in model.down:  # the same 2x2/2 window, but every pixel gets gradient (a max sends it to one)
        down[0] = nn.AvgPool2d(2)
    concatenated: dict[str, torch.Tensor] = {}
    for i, up in enumerate(model.up):
        up.conv.register_forward_pre_hook(lambda _m, inputs, i=i: concatenated.__setitem__(f"up.{i}", inputs[0]))
    s = summary(model, (3, 64, 64))
    joins = [r for r in s.rows if r.join]
    assert [r.name for r in joins] == ["concat (skip from down.2)", "concat (skip from down.1)",
                                       "concat (skip from down.0)", "concat (skip from inc)"]
    assert [r.output_shape for r in joins] == [tuple(concatenated[f"up.{i}"].shape[1:]) for i in range(4)]
    assert joins[0].facts.formulas["channels"] == "16 + 16 = 32"
    # by hand, the encoder: inc 3, 5; each stage pools (+1 at the old jump, jump x2) and adds 2 convs (+2*2*jump):
    # 14, 32, 68, 140 = the first concat's (its skip, down.2, sees 68). A 2x2/2 transposed conv keeps the field and
    # halves the jump, but neighbouring cells now share a source cell, so the decoder's fields differ from cell to
    # cell: the widest reach 172, 188, 204 (checked cell by cell against autograd below)
    assert [r.receptive_field for r in joins] == [(140, 140), (172, 172), (188, 188), (204, 204)]
    assert [r.jump for r in joins] == [(8, 8), (4, 4), (2, 2), (1, 1)]
    assert s.rows[-1].receptive_field == (204, 204)
    # the cells repeat every 2, 4, 8, 16 cells after 1, 2, 3, 4 upsamplings: look at that many
    measured = [_empirical_field(model, up.conv, 256, pre=True, cells=2 ** (i + 1)) for i, up in enumerate(model.up)]
    assert measured == [r.receptive_field[0] for r in joins]  # type: ignore[index]
    assert _empirical_field(model, model.outc, 256, cells=16) == 204
    assert _empirical_field(model, model.outc, 256, cells=1) == 188  # the centre cell sees less than the widest


class Branches(nn.Module):
    """A user's model: parallel branches concatenated, a scalar added, a spatial concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 3, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.a(x), self.b(x)], dim=1) + 1  # (N, 5, H, W)
        return torch.cat([y, y], dim=2)  # along the height: not a join of channels


def test_parallel_branches_are_not_called_skips_and_other_ops_make_no_rows() -> None:
    s = summary(Branches(), (1, 8, 8))
    joins = [r for r in s.rows if r.join]
    assert [(r.name, r.output_shape, r.receptive_field) for r in joins] == [("concat (of a, b)", (5, 8, 8), (5, 5))]
    assert joins[0].skip_from == ("a", "b")
    assert [r.name for r in s.rows] == ["a", "b", "concat (of a, b)"]


def test_depth_collapses_joins_into_their_block() -> None:
    model = models.create("resnet_small", depth=8)
    rows = summary(model, (1, 28, 28), depth=2).rows
    assert not [r for r in rows if r.join]
    assert {r.name: (r.receptive_field, r.jump) for r in rows}["layer3.0"] == ((25, 25), (4, 4))


def test_json_marks_joins() -> None:
    data = summary(models.create("resnet_small", depth=8), (1, 28, 28)).as_dict()
    joins = [layer for layer in data["layers"] if layer["join"]]
    assert joins[0]["skip_from"] == ["layer1.0's input"] and joins[0]["params"] == 0
    assert joins[0]["receptive_field"] == [7, 7]


def test_the_slide_bias_note_only_on_the_slide_network() -> None:
    def has_note(model: nn.Module, shape: tuple[int, ...]) -> bool:
        return any("61,795" in note for note in summary(model, shape).notes)

    table = spec.load_shipped("lenet_slides")
    assert has_note(spec.build(table), table.input_shape)
    assert has_note(models.create("lenet5"), (3, 32, 32))  # the same network from the zoo: 62,006
    assert not has_note(spec.build(spec.load_shipped("lenet_slides", (1, 28, 28))), (1, 28, 28))  # 44,426
    assert not has_note(models.create("resnet_small", depth=8), (1, 28, 28))
    keras = spec.load_shipped("keras_slides")
    assert not has_note(spec.build(keras), keras.input_shape)


def test_a_reused_relu_points_to_its_first_call() -> None:
    rows = summary(models.create("resnet_small", depth=8), (1, 28, 28)).rows
    names = [r.label for r in rows]
    second = next(r for r in rows if r.label == "layer1.0.relu (call 2)")
    assert second.facts.notes == ["reused: the same ReLU as row 'layer1.0.relu', called again; it has no parameters, "
                                  "so nothing is shared or counted twice"]
    assert names.index("layer1.0.relu") < names.index("add (skip from layer1.0's input)") < names.index(second.label)
    assert (second.name, second.call) == ("layer1.0.relu", 2)  # JSON: the module's path, and which call


@pytest.mark.parametrize("name", ["plain_deep", "residual_deep"])
def test_deep_pair_has_the_same_fields_through_the_stages(name: str) -> None:
    # option-A shortcuts (1x1/2 subsampling, zero channels) never see more than the convolution path
    s = summary(models.create(name, depth=8), (1, 28, 28))
    assert {r.name: r.receptive_field for r in s.rows}["layer3.0.conv2"] == (25, 25)
    assert len([r for r in s.rows if r.join]) == (3 if name == "residual_deep" else 0)


def test_a_concatenation_along_width_has_no_single_receptive_field() -> None:
    """Joined side by side, the right half's cells see input columns far from their own: the column says unknown."""
    from torch import nn

    from cnnkit.summarize import summary

    class Side(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, self.conv(x)], dim=3)

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Side(), nn.Conv2d(4, 4, 3, padding=1))
    rows = {row.name: row for row in summary(model, (1, 16, 16)).rows}
    assert rows["0"].receptive_field == (3, 3)
    assert rows["2"].receptive_field is None
