"""Multi-channel convolution with several filters: JSON against plain loops and torch, flip, dilation, errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.explain import explain_conv, explain_conv_volume, parse_filters, parse_volume


def _by_hand(x: np.ndarray, w: np.ndarray, b: list[float], s: int, p: int, d: int, flip: bool) -> dict[str, Any]:
    """Plain Python loops, nothing from cnnkit: per filter and cell, each channel's sum, then the total plus bias."""
    c, h, wd = x.shape
    f, _, kh, kw = w.shape
    if flip:
        w = w[:, :, ::-1, ::-1]
    padded = [[[0.0] * (wd + 2 * p) for _ in range(h + 2 * p)] for _ in range(c)]
    for ch in range(c):
        for r in range(h):
            for col in range(wd):
                padded[ch][r + p][col + p] = float(x[ch][r][col])
    out_h, out_w = (h + 2 * p - d * (kh - 1) - 1) // s + 1, (wd + 2 * p - d * (kw - 1) - 1) // s + 1
    output = [[[0.0] * out_w for _ in range(out_h)] for _ in range(f)]
    channel_sums = []
    for o in range(f):
        for i in range(out_h):
            for j in range(out_w):
                sums = [sum(padded[ch][i * s + u * d][j * s + v * d] * float(w[o][ch][u][v]) for u in range(kh) for v in range(kw))
                        for ch in range(c)]
                channel_sums.append(sums)
                output[o][i][j] = sum(sums) + b[o]
    return {"output": output, "channel_sums": channel_sums, "size": (out_h, out_w)}


@pytest.mark.parametrize("seed", range(25))
def test_volume_json_matches_loops_and_torch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c, f = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    s, p, d = int(rng.integers(1, 3)), int(rng.integers(0, 2)), int(rng.integers(1, 3))
    h, wd = (int(v) for v in rng.integers(d * 2 + 2, 8, size=2))
    x, w = rng.integers(-9, 10, (c, h, wd)), rng.integers(-3, 4, (f, c, kh, kw))
    b = [float(v) / 2 for v in rng.integers(-4, 5, f)]
    flip = bool(seed % 2)
    got = json.loads(json.dumps(explain_conv_volume(x, w, b, s, p, d, flip).to_dict()))
    want = _by_hand(x, w, b, s, p, d, flip)

    assert got["output"] == want["output"]
    assert [got["output_size"]["height"]["value"], got["output_size"]["width"]["value"]] == list(want["size"])
    assert got["output_depth"] == f
    applied = torch.from_numpy(w).double()
    applied = torch.flip(applied, dims=(2, 3)) if flip else applied
    torch_out = F.conv2d(torch.from_numpy(x).double()[None], applied, torch.tensor(b, dtype=torch.float64), s, p, d)[0]
    np.testing.assert_allclose(np.array(got["output"]), torch_out.numpy(), atol=1e-12)
    for step, sums in zip(got["steps"], want["channel_sums"], strict=True):
        assert [ch["sum"] for ch in step["channels"]] == sums
        assert step["sum"] == sum(sums)
        assert step["value"] == sum(sums) + b[step["filter"]]
        assert step["expression"].endswith(f"= {step['value']:g}")


def test_rgb_one_filter_per_channel_summed_plus_bias() -> None:
    e = explain_conv_volume("1 2; 3 4 | 5 6; 7 8 | 0 1; 1 0", "1 0; 0 1 | 0 1; 1 0 | 1 1; 1 1", bias=1)
    first = e.to_dict()["steps"][0]
    assert [ch["expression"] for ch in first["channels"]] == ["1*1 + 2*0 + 3*0 + 4*1 = 5", "5*0 + 6*1 + 7*1 + 8*0 = 13",
                                                               "0*1 + 1*1 + 1*1 + 0*1 = 2"]
    assert first["expression"] == "5 + 13 + 2 + 1 = 21"
    assert e.output.shape == (1, 1, 1)


def test_several_filters_stack_into_depth() -> None:
    e = explain_conv_volume(np.ones((2, 3, 3)), ["1 1; 1 1 | 1 1; 1 1", "1 0; 0 0 | 0 0; 0 -1"], bias=[0, 0.5])
    assert e.output.shape == (2, 2, 2)
    assert e.output[0].tolist() == [[8, 8], [8, 8]] and e.output[1].tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_single_channel_volume_agrees_with_explain_conv() -> None:
    x, k = "3 0 1 2; 1 5 8 9; 2 7 2 5; 0 1 3 1", "1 0 -1; 2 0 -2; 1 0 -1"
    for flip in (False, True):
        for dilation in (1, 2) if not flip else (1,):
            plain = explain_conv(x, k, padding=1, flip=flip, dilation=dilation)
            volume = explain_conv_volume(x, k, padding=1, flip=flip, dilation=dilation)
            assert volume.output[0].tolist() == plain.output.tolist()


def test_dilated_explain_conv_matches_torch() -> None:
    rng = np.random.default_rng(7)
    x, k = rng.integers(-5, 6, (7, 8)), rng.integers(-2, 3, (3, 2))
    e = explain_conv(x, k, stride=2, padding=1, dilation=2)
    want = F.conv2d(torch.from_numpy(x).double()[None, None], torch.from_numpy(k).double()[None, None], None, 2, 1, 2)[0, 0]
    assert e.output.tolist() == want.tolist()
    assert e.steps[0]["rows"] == [0, 4] and len(e.steps[0]["window"]) == 3
    assert e.output_size[0].formula == "(7 + 2*1 - 2*(3 - 1) - 1)/2 + 1 = 3"


def test_parse_volume_and_filters_forms(tmp_path: Any) -> None:
    assert parse_volume("1 2; 3 4 | 5 6; 7 8", "input").shape == (2, 2, 2)
    assert parse_volume("[[[1, 2]], [[3, 4]]]", "input").tolist() == [[[1, 2]], [[3, 4]]]
    assert parse_volume("1 2; 3 4", "input").shape == (1, 2, 2)
    np.save(tmp_path / "w.npy", np.zeros((4, 3, 2, 2)))
    assert parse_filters(str(tmp_path / "w.npy"), "kernel").shape == (4, 3, 2, 2)
    assert parse_filters(["1 | 2", "3 | 4"], "kernel").shape == (2, 2, 1, 1)
    assert parse_filters(np.zeros((2, 1, 3, 3)), "kernel").shape == (2, 1, 3, 3)


def test_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"each filter needs one slice per input channel: the input has 2 channel\(s\), the filters 1. "
                                         r"Received: input shape=\(2, 2, 2\), kernel shape=\(1, 1, 1, 1\)"):
        explain_conv_volume("1 2; 3 4 | 5 6; 7 8", "1")
    with pytest.raises(ValueError, match=r"`kernel`: every filter must have the shape of the first, \(2, 1, 1\). Received: kernel\[1\] shape=\(1, 1, 1\)"):
        parse_filters(["1 | 2", "3"], "kernel")
    with pytest.raises(ValueError, match=r"`bias` must be one number, or one per filter \(2\). Received: bias=\[1.0, 2.0, 3.0\]"):
        explain_conv_volume("1 2; 3 4", ["1", "2"], bias=[1, 2, 3])
    with pytest.raises(ValueError, match=r"`input` must be a rectangular matrix.*Received: input='1 2; 3 4 \| 5 6'"):
        parse_volume("1 2; 3 4 | 5 6", "input")
