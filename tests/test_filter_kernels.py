"""`cnnkit filter`: every kernel the lecture decks show is listed, and a kernel written out (fractions too) is applied as torch does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit import filters
from cnnkit.cli import main

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

# every numeric kernel the decks print, transcribed here by hand: (deck, weights)
DECK_KERNELS = [
    ("000", [[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]]),
    ("000", [[-1, -1], [1, 1]]),
    ("000", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    ("000", [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    ("001", [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
    ("001", [[1, 0, -1], [1, 0, -1], [1, 0, -1]]),
    ("001", [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
    ("001", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
    ("002", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    ("002", [[1 / 9] * 3] * 3),
    ("003", [[1, 0, -1], [1, 0, -1], [1, 0, -1]]),
    ("004", [[1, 0, 1], [0, 1, 0], [1, 0, 1]]),
    ("004", [[1, 0, 1], [0, 1, 1], [1, 0, 1]]),
    ("004", [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1]]),
    ("004", [[1, 0, 0, 1, 1], [0, 1, 1, 0, 0], [1, 0, 1, 0, 0], [1, 1, 0, 1, 1], [1, 1, 1, 0, 0]]),
]


def _same(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """torch's own "same" convolution with zeros (even kernels: the extra row and column at the end)."""
    t = torch.from_numpy(image.astype(np.float64))[None, None]
    return F.conv2d(t, torch.from_numpy(np.asarray(weights, dtype=np.float64))[None, None], padding="same")[0, 0].numpy()


@pytest.mark.parametrize(("deck", "weights"), DECK_KERNELS, ids=[f"{d}-{i}" for i, (d, _) in enumerate(DECK_KERNELS)])
def test_every_deck_kernel_is_listed_with_its_deck(deck: str, weights: list[list[float]]) -> None:
    rows = [row for row in filters.kernel_table() if np.array_equal(np.asarray(row["weights"]), np.asarray(weights, dtype=np.float64))]
    assert len(rows) == 1, weights
    assert any(shown.startswith(f"deck {deck}") for shown in rows[0]["shown_in"])
    if SEEDS.exists():  # and the deck prints it so, row by row (the blur as 1/9)
        text = next(SEEDS.glob(f"{deck}_*.txt")).read_text(encoding="utf-8")
        lines = [line.strip() for line in text.splitlines()]
        printed = ["\t".join("1/9" if v == 1 / 9 else f"{int(v)}" for v in row) for row in weights]
        assert any(lines[i:i + len(printed)] == printed for i in range(len(lines))), f"not in deck {deck}: {printed}"


def test_the_list_command_names_the_decks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["filter", "--list"]) == 0
    out = capsys.readouterr().out
    assert "horizontal-edge-2x2  2x2" in out and "[shown in deck 000 (Kernels / Weights / Filters)]" in out
    assert "feature-5x5" in out and "box-blur" in out and "(the slides' 1/9 blur filter)" in out
    assert main(["filter", "--list", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert {"name", "size", "weights", "description", "shown_in"} <= set(table[0])


@pytest.mark.parametrize("name", ["horizontal-edge-2x2", "feature-4x4", "feature-5x5", "x-shape", "vertical-line"])
def test_even_and_odd_deck_kernels_keep_the_size_as_torch_same(name: str) -> None:
    image = np.random.default_rng(7).integers(0, 256, (9, 11)).astype(np.float64)
    kernel = filters.get_kernel(name)
    np.testing.assert_allclose(filters.apply_kernel(image, name, padding="zeros"), _same(image, kernel.array), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_a_kernel_written_out_agrees_with_torch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    top, bottom = rng.integers(-5, 6, (kh, kw)), rng.integers(1, 6, (kh, kw))
    text = "; ".join(" ".join(f"{a}/{b}" for a, b in zip(r1, r2, strict=True)) for r1, r2 in zip(top, bottom, strict=True))
    image = rng.integers(0, 256, (8, 10)).astype(np.float64)
    np.testing.assert_allclose(filters.apply_kernel(image, text, padding="zeros"), _same(image, top / bottom), rtol=1e-12, atol=1e-9)


def test_the_command_applies_the_slides_blur(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (12, 16)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    out = tmp_path / "blur.png"
    blur = "1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9"
    assert main(["filter", str(tmp_path / "grey.png"), "--kernel", blur, "--padding", "zeros", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kernel"] == "custom" and data["scale"] == "clip" and data["weights"] == [[1 / 9] * 3] * 3
    want = np.clip(np.rint(_same(pixels.astype(np.float64), np.full((3, 3), 1 / 9))), 0, 255)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), want)
    named = filters.filter_image(tmp_path / "grey.png", "box-blur", padding="zeros")
    np.testing.assert_array_equal(named.display, want)  # the registered blur is the same kernel


def test_a_binary_feature_kernel_is_shown_min_to_max(tmp_path: Path) -> None:
    pixels = np.random.default_rng(4).integers(0, 256, (10, 10)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "grey.png")
    result = filters.filter_image(tmp_path / "grey.png", "feature-5x5")
    assert result.scale == "minmax" and result.display.min() == 0 and result.display.max() == 255


@pytest.mark.parametrize(("kernel", "message"), [
    ("sobel", "unknown kernel. Did you mean sobel-y, sobel-x, vertical-edge-sobel?"),
    ("1 2; 3", "`kernel` must be a rectangular matrix of numbers or fractions"),
    ("1/0", "the fraction '1/0' divides by zero"),
])
def test_a_bad_kernel_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], kernel: str, message: str) -> None:
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "grey.png")
    assert main(["filter", str(tmp_path / "grey.png"), "--kernel", kernel]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ") and message in err and f"Received: kernel={kernel!r}" in err and err.count("\n") == 1
