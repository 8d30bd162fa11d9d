"""One decoder for every command: the same file gives the same pixels, or the same refusal, wherever it is read.

The readers: a network input (``cnnkit predict``, ``visualize``: :func:`read_pixels`), a ``folder:`` dataset,
``cnnkit filter`` and ``cnnkit explain`` (:func:`read_image`). Each case is a file that once came out
differently in one of them: 16-bit grey (clipped to white), EXIF orientation (ignored by ``filter``), and the
pixel limit (three different ones).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data.folder import load_folder
from cnnkit.filters import filter_image
from cnnkit.images import ImagePrep, read_image, read_pixels

SIDE = 12
Maker = Callable[[Path], tuple[Path, np.ndarray]]  # writes a file, returns it and its expected grey levels (H, W)


def _levels(seed: int, low: int, high: int, shape: tuple[int, ...] = (SIDE, SIDE)) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape)


def _grey16(low: int, high: int) -> Maker:
    def make(folder: Path) -> tuple[Path, np.ndarray]:
        stored = _levels(low, low, high).astype(np.uint16)
        Image.fromarray(stored).save(folder / f"grey16_{low}.png")
        assert Image.open(folder / f"grey16_{low}.png").mode.startswith("I")
        return folder / f"grey16_{low}.png", np.round(stored / 257).astype(np.uint8)
    return make


def _rotated(folder: Path) -> tuple[Path, np.ndarray]:
    stored = _levels(3, 0, 256, (SIDE, SIDE + 4)).astype(np.uint8)  # wider than tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(folder / "rotated.png", exif=exif)
    return folder / "rotated.png", np.rot90(stored, k=-1)  # upright: taller than wide


def _grey_with_alpha(folder: Path) -> tuple[Path, np.ndarray]:
    grey = _levels(4, 0, 256).astype(np.uint8)
    Image.fromarray(np.stack([grey, np.full_like(grey, 128)], axis=-1), "LA").save(folder / "alpha.png")
    return folder / "alpha.png", grey  # the stored grey is kept, the transparency dropped


CASES = {"16-bit dark": _grey16(0, 2000), "16-bit bright": _grey16(60000, 65536), "EXIF rotated": _rotated,
         "grey with alpha": _grey_with_alpha}


@pytest.mark.parametrize("make", CASES.values(), ids=list(CASES))
def test_every_reader_sees_the_same_grey_levels(make: Maker, tmp_path: Path) -> None:
    path, expected = make(tmp_path)
    h, w = expected.shape
    as_input = read_pixels(path, ImagePrep((1, h, w)))
    np.testing.assert_array_equal(as_input[0].numpy(), expected)
    np.testing.assert_array_equal(read_image(path, "image"), expected)  # filter and explain


def test_filter_reads_the_photo_upright(tmp_path: Path) -> None:
    path, expected = _rotated(tmp_path)
    out = tmp_path / "out.png"
    filter_image(path, "sobel-x", out=out)
    assert np.asarray(Image.open(out)).shape == expected.shape  # taller than wide, as the photo is shown


def test_a_dark_and_a_bright_16_bit_class_train_apart(tmp_path: Path) -> None:
    """Clipped, both classes became the same white and training failed with "std must be > 0"."""
    for index, (low, high) in enumerate([(0, 3000), (50000, 65536)]):
        folder = tmp_path / "data" / ("dark", "bright")[index]
        folder.mkdir(parents=True)
        for n in range(3):
            Image.fromarray(_levels(n, low, high).astype(np.uint16)).save(folder / f"{n}.png")
    splits = load_folder(tmp_path / "data", image_size=(SIDE, SIDE), grayscale=True)
    images, labels = splits.train.images.float(), splits.train.labels
    dark, bright = images[labels == splits.train.class_names.index("dark")], \
        images[labels == splits.train.class_names.index("bright")]
    assert dark.mean() < 10 and bright.mean() > 190 and float(images.std()) > 50


def test_one_pixel_limit_for_every_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data" / "a"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(folder / "big.png")  # 1,600 pixels
    (tmp_path / "data" / "b").mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "data" / "b" / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # between Pillow's warning and its error: refused too
    readers: dict[str, Callable[[], object]] = {
        "network input": lambda: read_pixels(folder / "big.png", ImagePrep((1, 8, 8))),
        "filter": lambda: filter_image(folder / "big.png", "sobel-x"),
        "explain": lambda: read_image(folder / "big.png", "input"),
        "folder dataset": lambda: load_folder(tmp_path / "data", image_size=(8, 8)),
    }
    for what, read in readers.items():
        with pytest.raises((OSError, ValueError), match=r"decompression bomb \(40x40 = 1,600 pixels, more than "
                                                        r"PIL.Image.MAX_IMAGE_PIXELS = 1,000\)") as raised:
            read()
        assert "big.png" in str(raised.value), what


def test_luma_is_the_datasets_luma(tmp_path: Path) -> None:
    """A colour file read as grey by ``explain`` has the levels a one-channel network gets from it."""
    rgb = _levels(9, 0, 256, (SIDE, SIDE, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    as_input = read_pixels(tmp_path / "colour.png", ImagePrep((1, SIDE, SIDE)))
    assert torch.equal(torch.from_numpy(read_image(tmp_path / "colour.png", "image")), as_input[0])


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("fit", ["crop", "stretch"])
def test_a_jpeg_decoded_at_a_reduced_scale_keeps_its_geometry(tmp_path: Path, orientation: int, fit: str) -> None:
    """1001 x 803 pixels at 1/8 scale decode to 126 x 101 pixels that hold only 125.125 x 100.375 of them: the cut
    and the resize use that extent (turned upright with the photo), so edges land where a full-scale decode puts
    them, as its mask and boxes say. (Using all 126 x 101 moved them by up to a quarter of an output pixel.)"""
    from PIL import ImageOps

    from cnnkit.images import crop_box, decode

    pixels = np.full((803, 1001, 3), 30, np.uint8)
    pixels[:, 600:] = 220  # an edge across, one along
    pixels[500:, :] = 220
    stored_as = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    stored = Image.fromarray(pixels)
    if stored_as[orientation] is not None:
        stored = stored.transpose(stored_as[orientation])  # EXIF `orientation` turns it back upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    stored.save(path, quality=95, exif=exif)
    got, _, own = decode(path, (120, 120), fit)  # type: ignore[arg-type]
    with Image.open(path) as opened:
        upright = ImageOps.exif_transpose(opened).convert("RGB")  # the whole file, at full scale
    box = crop_box(upright.size, (120, 120)) if fit == "crop" else None
    full = np.asarray(upright.resize((120, 120), Image.Resampling.BILINEAR, box=box))

    def bright(values: np.ndarray, axis: int) -> float:  # the width (or height) of the bright part, to a fraction
        profile = values.astype(float).mean(-1).mean(axis)
        return float(((profile - profile.min()) / (profile.max() - profile.min())).sum())

    assert own == (1001, 803)
    assert abs(bright(got, 0) - bright(full, 0)) < 0.06 and abs(bright(got, 1) - bright(full, 1)) < 0.06
