"""cnnkit.arith: the slides' numbers, and agreement with what torch actually computes."""

from __future__ import annotations

import json
import random
from importlib import resources

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnkit import arith
from cnnkit.layers import Conv2dSame, SeparableConv2d

FIXTURES = json.loads((resources.files("cnnkit") / "data_files" / "seed_examples.json").read_text())


@pytest.mark.parametrize("case", FIXTURES["output_size"]["cases"], ids=lambda c: f"n{c['n']}f{c['f']}p{c['p']}s{c['s']}")
def test_slide_output_sizes(case: dict[str, int]) -> None:
    assert arith.conv_output_size(case["n"], case["f"], case["s"], case["p"]) == case["expected"]


def test_formula_is_written_as_the_slides_write_it() -> None:
    assert arith.conv_output_worked(32, 5)[0].formula == "(32 + 2*0 - 5)/1 + 1 = 28"
    assert arith.conv_output_worked(7, 3, 2)[0].formula == "(7 + 2*0 - 3)/2 + 1 = 3"
    # floor is written only where it changes the result (the slides' 6x6, stride 2 case)
    assert arith.conv_output_worked(6, 3, 2)[0].formula == "floor((6 + 2*0 - 3)/2) + 1 = 2"
    assert arith.conv_output_worked(10, 3, 1, 2, 2)[0].formula == "(10 + 2*2 - 2*(3 - 1) - 1)/1 + 1 = 10"


def test_slide_parameter_counts() -> None:
    params = {p["id"]: p for p in FIXTURES["parameters"]}
    assert arith.conv_params(3, 10, 3).total == params["quiz-10-filters"]["expected"] == 280
    fc = params["fc-vs-conv"]
    assert arith.dense_params(32 * 32 * 3, 28 * 28 * 6, bias=False).total == fc["fully_connected_32x32x3_to_28x28x6_weights"]
    conv = arith.conv_params(3, 6, 5)
    assert (conv.weights, conv.biases, conv.total) == (450, 6, fc["conv_6_filters_5x5x3_params"])
    assert conv.formula == "(5*5*3 + 1)*6 = 456"
    assert arith.dense_params(400, 120).formula == "(400 + 1)*120 = 48120"


def test_same_padding_keeps_size_for_odd_kernels_at_stride_one() -> None:
    for f in (1, 3, 5, 7):
        assert arith.same_padding(6, f) == (((f - 1) // 2,) * 2, ((f - 1) // 2,) * 2)
        assert arith.conv_output_size(6, f, padding="same") == 6
    # stride 2 "same": ceil(n/s), the odd pixel after, as TensorFlow does
    assert arith.same_padding(224, 3, 2) == ((0, 1), (0, 1))
    assert arith.conv_output_size(225, 3, 2, "same") == 113


def _random_window(rng: random.Random) -> dict[str, int]:
    return {"n": rng.randint(1, 20), "k": rng.randint(1, 7), "s": rng.randint(1, 4), "p": rng.randint(0, 3),
            "d": rng.randint(1, 3)}


def test_conv_output_size_matches_torch_on_random_configurations() -> None:
    rng = random.Random(0)
    checked = failed = 0
    for _ in range(400):
        c = _random_window(rng)
        h, w = c["n"], rng.randint(1, 20)
        x = torch.zeros(1, 1, h, w)
        weight = torch.zeros(1, 1, c["k"], c["k"])
        try:
            expected = tuple(F.conv2d(x, weight, stride=c["s"], padding=c["p"], dilation=c["d"]).shape[2:])
        except RuntimeError:
            with pytest.raises(ValueError, match="which is not positive"):
                arith.conv_output_size((h, w), c["k"], c["s"], c["p"], c["d"])
            failed += 1
            continue
        assert arith.conv_output_size((h, w), c["k"], c["s"], c["p"], c["d"]) == expected, c
        checked += 1
    assert checked > 150 and failed > 20  # both branches were exercised


def test_same_padding_matches_torch_and_conv2dsame() -> None:
    rng = random.Random(1)
    for _ in range(150):
        n, k, d = rng.randint(1, 20), rng.randint(1, 6), rng.randint(1, 2)
        x = torch.zeros(1, 1, n, n)
        torch_same = F.conv2d(x, torch.zeros(1, 1, k, k), padding="same", dilation=d).shape[2:]
        assert arith.conv_output_size((n, n), k, 1, "same", d) == tuple(torch_same)
        s = rng.randint(1, 4)
        ours = Conv2dSame(1, 1, k, s, dilation=d)(x).shape[2:]
        assert arith.conv_output_size((n, n), k, s, "same", d) == tuple(ours) == (-(-n // s),) * 2


def test_transposed_output_size_matches_torch() -> None:
    rng = random.Random(2)
    for _ in range(300):
        c = _random_window(rng)
        op = rng.randint(0, max(c["s"], c["d"]) - 1)
        x = torch.zeros(1, 1, c["n"], c["n"])
        try:
            expected = F.conv_transpose2d(x, torch.zeros(1, 1, c["k"], c["k"]), stride=c["s"], padding=c["p"],
                                          output_padding=op, dilation=c["d"]).shape[2:]
        except RuntimeError:
            with pytest.raises(ValueError):
                arith.conv_transpose_output_size(c["n"], c["k"], c["s"], c["p"], op, c["d"])
            continue
        assert arith.conv_transpose_output_size((c["n"], c["n"]), c["k"], c["s"], c["p"], op, c["d"]) == tuple(expected)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_output_size_matches_torch(ceil_mode: bool) -> None:
    rng = random.Random(3)
    for _ in range(300):
        c = _random_window(rng)
        p = rng.randint(0, c["k"] // 2)
        x = torch.zeros(1, 1, c["n"], c["n"] + 1)
        try:
            expected = F.max_pool2d(x, c["k"], c["s"], p, c["d"], ceil_mode=ceil_mode).shape[2:]
        except RuntimeError:
            with pytest.raises(ValueError):
                arith.pool_output_size((c["n"], c["n"] + 1), c["k"], c["s"], p, c["d"], ceil_mode)
            continue
        assert arith.pool_output_size((c["n"], c["n"] + 1), c["k"], c["s"], p, c["d"], ceil_mode) == tuple(expected), c
        if c["d"] == 1:
            avg = F.avg_pool2d(x, c["k"], c["s"], p, ceil_mode=ceil_mode).shape[2:]
            assert arith.pool_output_size((c["n"], c["n"] + 1), c["k"], c["s"], p, 1, ceil_mode) == tuple(avg)


def test_pool_padding_limit_and_default_stride() -> None:
    assert arith.pool_output_size(28, 2) == 14  # stride defaults to the pool size
    with pytest.raises(ValueError, match=r"`padding` \(2\) must be at most half the pool size \(3 // 2 = 1\)"):
        arith.pool_output_size(8, 3, padding=2)


@pytest.mark.parametrize(
    ("module", "count"),
    [
        (nn.Conv2d(3, 6, 5), arith.conv_params(3, 6, 5).total),
        (nn.Conv2d(8, 16, (3, 5), groups=4, bias=False), arith.conv_params(8, 16, (3, 5), groups=4, bias=False).total),
        (nn.Conv2d(32, 64, 3, groups=32), arith.conv_params(32, 64, 3, groups=32).total),
        (nn.ConvTranspose2d(6, 4, 3, groups=2), arith.conv_params(6, 4, 3, groups=2).total),
        (nn.Linear(400, 120), arith.dense_params(400, 120).total),
        (SeparableConv2d(32, 64, 3), arith.separable_params(32, 64, 3).total),
        (SeparableConv2d(8, 5, 5, depth_multiplier=3, bias=False), arith.separable_params(8, 5, 5, 3, False).total),
        (nn.BatchNorm2d(12), arith.batchnorm_params(12).total),
    ],
)
def test_parameter_counts_match_torch_modules(module: nn.Module, count: int) -> None:
    assert sum(p.numel() for p in module.parameters()) == count


def test_groups_must_divide_channels() -> None:
    with pytest.raises(ValueError, match=r"`in_channels` \(=3\) must be divisible by `groups` \(=2\)"):
        arith.conv_params(3, 4, 3, groups=2)


def _flop_macs(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2  # torch counts a multiply-accumulate as two FLOPs


def test_macs_match_torch_flop_counter() -> None:
    x = torch.zeros(1, 6, 14, 14)
    conv = nn.Conv2d(6, 16, 5, stride=1, padding=1, groups=2)
    out = conv(x).shape[2:]
    assert arith.conv_macs(6, 16, tuple(out), 5, groups=2) == _flop_macs(conv, x)
    deconv = nn.ConvTranspose2d(6, 4, 3, stride=2)
    assert arith.conv_transpose_macs(6, 4, (14, 14), 3) == _flop_macs(deconv, x)
    assert arith.dense_macs(400, 120) == _flop_macs(nn.Linear(400, 120), torch.zeros(1, 400))


def _empirical_field(layers: list[nn.Module], size: int = 64) -> int:
    """Input pixels that reach the centre output cell, measured with autograd."""
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.constant_(module.weight, 1.0)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = model(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = (x.grad[0, 0].abs().sum(dim=1) > 0).nonzero()  # type: ignore[union-attr]
    return int(rows.max() - rows.min() + 1)


def test_receptive_field_matches_autograd() -> None:
    chain = [(5, 1, 1), (2, 2, 1), (3, 1, 2), (3, 2, 1), (3, 1, 1)]
    modules = [nn.Conv2d(1, 1, 5), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3, 2),
               nn.Conv2d(1, 1, 3)]
    fields = arith.receptive_fields(chain)
    for depth in range(1, len(chain) + 1):
        assert fields[depth - 1].size[0] == _empirical_field(modules[:depth]), depth
    assert [f.jump[0] for f in fields] == [1, 2, 2, 4, 4]


def test_span_agrees_with_the_chain_formula() -> None:
    rng = random.Random(3)
    for _ in range(200):
        chain = [(rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 2)) for _ in range(rng.randint(1, 6))]
        span = arith.Span()
        for kernel, stride, dilation in chain:
            span = span.window(kernel, stride, rng.randint(0, 2), dilation)  # padding shifts a field, never widens it
        last = arith.receptive_fields(chain)[-1]
        assert (span.size(), span.jump()) == (last.size[0], last.jump[0]), chain


def _rows_reached(model: nn.Module, size: int, cells: range) -> list[tuple[int, int]]:
    """Per output cell (a row at the centre column): the first and last input row its gradient reaches."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.constant_(module.weight, 1.0)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = model(x)
    reached = []
    for cell in cells:
        (grad,) = torch.autograd.grad(y[0, 0, cell, y.shape[3] // 2], x, retain_graph=True)
        rows = (grad[0, 0].abs().sum(dim=1) > 0).nonzero()
        reached.append((int(rows.min()), int(rows.max())))
    return reached


@pytest.mark.parametrize(("layers", "build"), [
    # (torch layers, the same as a Span): upsampling after downsampling, overlapping and gapped kernels
    ([nn.Conv2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 2, 1), nn.ConvTranspose2d(1, 1, 2, 2), nn.Conv2d(1, 1, 3, 1, 1)],
     lambda s: s.window(3, 2, 1).window(3, 2, 1).transposed(2, 2).window(3, 1, 1)),
    ([nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, 1, 1), nn.ConvTranspose2d(1, 1, 3, 2, 1), nn.Conv2d(1, 1, 3, 1, 1)],
     lambda s: s.window(2, 2).window(3, 1, 1).transposed(3, 2, 1).window(3, 1, 1)),
    ([nn.Conv2d(1, 1, 5, 4, 2), nn.ConvTranspose2d(1, 1, 4, 2, 1), nn.ConvTranspose2d(1, 1, 1, 2), nn.Conv2d(1, 1, 3, 1, 1)],
     lambda s: s.window(5, 4, 2).transposed(4, 2, 1).transposed(1, 2).window(3, 1, 1)),
], ids=["unet-like", "overlapping", "gapped"])
def test_span_through_transposed_convolutions_matches_autograd(layers: list[nn.Module], build: object) -> None:
    span = build(arith.Span())  # type: ignore[operator]
    size = 96
    out = nn.Sequential(*layers)(torch.zeros(1, 1, size, size)).shape[2]
    centre = out // 2
    reached = _rows_reached(nn.Sequential(*layers), size, range(centre, centre + span.period + 1))
    # cell o sees input rows span.cells(o) exactly: its padding places it, cell by cell over a whole period
    assert reached == [span.cells(o) for o in range(centre, centre + span.period + 1)]
    assert span.size() == max(last - first + 1 for first, last in reached)
    assert span.jump() == (reached[-1][0] - reached[0][0]) // span.period


def test_too_large_kernel_names_formula_and_sizes() -> None:
    with pytest.raises(ValueError, match=r"height would be \(3 \+ 2\*0 - 5\)/1 \+ 1 = -1.*Received: input_size=3, kernel=5"):
        arith.conv_output_size((3, 3), 5)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError), ("3", TypeError), ((1, 2, 3), TypeError),
                                              (True, TypeError), (2.5, TypeError)])
def test_bad_arguments_are_named(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"kernel.*Received: kernel="):
        arith.conv_output_size(8, value)  # type: ignore[arg-type]
