"""Matrices and volumes from image files: grey levels 0-255, the size limit, undecodable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.explain import explain_conv, parse_matrix, parse_volume
from cnnkit.images import read_image, write_png


def test_png_and_jpeg_as_grey_levels(tmp_path: Path) -> None:
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert parse_matrix(str(tmp_path / "g.png"), "input").tolist() == grey.astype(float).tolist()
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert parse_matrix(str(tmp_path / "c.png"), "input")[0, 0] == round(0.299 * 200)
    assert parse_volume(str(tmp_path / "c.png"), "input").shape == (3, 4, 5)
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=95)
    assert np.abs(parse_matrix(str(tmp_path / "g.jpg"), "input") - grey).max() < 8
    assert explain_conv(str(tmp_path / "g.png"), "1 -1").output.shape == (6, 7)


def test_size_limit_and_undecodable(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((65, 64), dtype=np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"`input`: is 65x64 pixels \(4,160\), more than the 4,096 allowed here; crop or resize it "
                                         r"first. Received: input='.*big.png'"):
        parse_matrix(str(tmp_path / "big.png"), "input")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"`input`: cannot be decoded as an image \(UnidentifiedImageError: .*Received: input='.*bad.png'"):
        parse_matrix(str(tmp_path / "bad.png"), "input")
    with pytest.raises(FileNotFoundError, match=r"`image`: no such file. Received: image='nope.png'"):
        read_image("nope.png", "image")


def test_write_png_is_atomic_and_round_trips(tmp_path: Path) -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = write_png(tmp_path / "o.png", pixels)
    assert np.asarray(Image.open(out)).tolist() == pixels.tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temporary file left behind
    with pytest.raises(ValueError, match=r"`pixels` must be uint8 \(H, W\) or \(H, W, 3\). Received: dtype=float64"):
        write_png(tmp_path / "x.png", np.zeros((2, 2)))
    with pytest.raises(FileNotFoundError, match=r"`out`: the folder .* does not exist"):
        write_png(tmp_path / "missing" / "x.png", pixels)
