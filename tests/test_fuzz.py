"""Fuzzing the readers of untrusted input with hypothesis: anything they are given ends in a value or in the
documented error (ValueError, or OSError for a file), never in another exception.

Bounded and derandomised: the same examples every run, a few hundred in all, a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (pip install cnnkit[dev])")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cnnkit import spec  # noqa: E402
from cnnkit.explain.matrices import parse_matrix  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)
WORDS = [w for w in spec.WORDS if w != "input"]
TOKENS = st.sampled_from(["3", "5x5", "0", "-1", "2x", "x3", "1e9", "same", "valid", "stride=2", "padding=same",
                          "padding=1", "dilation=2", "groups=3", "bias=false", "bias=maybe", "multiplier=2",
                          "ceil_mode=true", "rate=0.5", "0.1", "999999", "=", "stride=", "#", "x"])


@st.composite
def tables(draw: Any) -> str:
    """A layer table: an input line, then lines of known words with plausible and implausible arguments."""
    shape = draw(st.sampled_from(["1x8x8", "3x32x32", "100", "3x5x5", "0x4x4", "3x4"]))
    lines = [f"input {shape}"]
    for _ in range(draw(st.integers(1, 6))):
        word = draw(st.sampled_from([*WORDS, "conv2d", "pool", "dense"]))
        lines.append(" ".join([word, *draw(st.lists(TOKENS, max_size=4))]))
    return "\n".join(lines) + "\n"


@FUZZ
@given(tables())
def test_layer_tables_parse_or_name_their_error(text: str) -> None:
    try:
        table = spec.parse(text, "fuzz.txt")
    except ValueError as error:
        assert "fuzz.txt" in str(error)
        return
    # what parses, writes back to a table that parses to the same layers (built on the meta device: no memory)
    with torch.device("meta"):
        model = spec.build(table)
    assert spec.parse(spec.to_text(model, table.input_shape), "again.txt").layers == table.layers


@FUZZ
@given(st.text(max_size=200))
def test_any_text_as_a_table_is_a_value_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        spec.parse(text, "text.txt")


@FUZZ
@given(st.one_of(st.text(max_size=80), st.from_regex(r"[-0-9 .;,|e\[\]]{0,60}", fullmatch=True)))
def test_matrix_text_is_a_matrix_or_a_value_error(text: str) -> None:
    try:
        matrix = parse_matrix(text, "kernel")
    except (ValueError, OSError):
        return
    assert matrix.ndim == 2 and matrix.size > 0


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 3))
def test_idx_headers_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory, body: bytes, mode: int) -> None:
    from cnnkit.data import read_idx

    path = tmp_path_factory.mktemp("idx") / "file.idx"
    # half the cases start with a plausible header (00 00 type ndim, sizes), so the checks past the magic run too
    header = [b"", b"\x00\x00\x08\x01", b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 3),
              b"\x00\x00\x0d\x02" + struct.pack(">II", 1 << 30, 1 << 30)][mode]
    path.write_bytes(header + body)
    try:
        array = read_idx(path)
    except ValueError as error:
        assert str(path) in str(error)
        return
    assert array.size * array.itemsize <= len(body) + len(header)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10, 1 << 40) | st.floats(allow_nan=True)
                    | st.text(max_size=12), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
CARD_FIELDS = ["task", "source", "input_shape", "class_names", "transform", "image", "data", "eval_split",
               "skipped_files", "noise"]


@FUZZ
@given(st.sampled_from([*CARD_FIELDS, "source.kind", "source.name", "source.kwargs", "source.text", "image.fit",
                        "transform.mean", "data.name", "data.image_size"]), JSON)
def test_model_card_fields_are_checked(field: str, value: Any) -> None:
    """A valid card with one field replaced by any JSON value: opened as a card, or a ValueError naming the file."""
    from cnnkit.runs import ModelCard

    card: dict[str, Any] = {
        "task": "classify", "source": {"kind": "table", "name": "net", "text": "input 1x8x8\nflatten\ndense 2\n"},
        "input_shape": [1, 8, 8], "class_names": ["a", "b"], "transform": {"mean": [0.5], "std": [0.2]},
        "image": {"fit": "crop", "interpolation": "bilinear"}, "data": {"name": "digits", "seed": 0},
        "eval_split": "test", "skipped_files": [], "noise": None}
    target, *rest = field.split(".")
    if rest and isinstance(card[target], dict):
        card[target][rest[0]] = value
    else:
        card[target] = value
    path = Path("RUN/model.json")
    try:
        ModelCard.from_dict(json.loads(json.dumps(card, allow_nan=True)), path)
    except ValueError as error:
        assert str(path) in str(error)


def _image_bytes() -> list[bytes]:
    """Real files of every kind the decoder takes: 8-bit grey, 16-bit grey, palette, RGBA, JPEG, BMP, WebP."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.arange(96, dtype=np.uint8).reshape(8, 12)
    images = [("PNG", Image.fromarray(pixels)), ("PNG", Image.fromarray(pixels.astype(np.uint16) * 250)),
              ("PNG", Image.fromarray(pixels).convert("P")), ("PNG", Image.fromarray(pixels).convert("RGBA")),
              ("JPEG", Image.fromarray(pixels).convert("RGB")), ("BMP", Image.fromarray(pixels)),
              ("WEBP", Image.fromarray(pixels).convert("RGB"))]
    encoded = []
    for kind, image in images:
        buffer = io.BytesIO()
        image.save(buffer, format=kind)
        encoded.append(buffer.getvalue())
    return encoded


IMAGES = _image_bytes()


@FUZZ
@given(st.integers(0, len(IMAGES) - 1), st.integers(0, 400), st.binary(min_size=1, max_size=8),
       st.sampled_from(["cut", "overwrite"]))
def test_damaged_image_files_are_read_or_refused(tmp_path_factory: pytest.TempPathFactory, which: int, at: int,
                                                 junk: bytes, how: str) -> None:
    """A real image file cut short or with bytes overwritten: every reader gives pixels or an error naming it."""
    from cnnkit.images import ImagePrep, read_image, read_pixels

    data = IMAGES[which]
    at = at % len(data)
    damaged = data[:at] if how == "cut" else data[:at] + junk + data[at + len(junk):]
    path = tmp_path_factory.mktemp("img") / "damaged.png"
    path.write_bytes(damaged)
    for read in (lambda: read_pixels(path, ImagePrep((1, 6, 6))), lambda: read_image(path, "image")):
        try:
            pixels = read()
        except (OSError, ValueError) as error:
            assert "damaged.png" in str(error)
            continue
        assert tuple(pixels.shape)[-2:] in ((6, 6), (8, 12))
