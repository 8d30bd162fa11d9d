"""Reading one image file as a NumPy array, and writing one PNG atomically (Pillow only, no torch).

Used where a user names a single image: ``cnnkit explain`` (an image as a matrix of grey
levels) and ``cnnkit filter`` (a photograph through a classic kernel). Decoding is
checked: a file Pillow cannot decode, and an image with more pixels than the caller
allows, are ``ValueError`` naming the argument and the file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
ImageMode = Literal["L", "RGB", "auto"]  # "auto": grey stays grey (H, W), anything else becomes RGB


def is_image_path(text: str) -> bool:
    """Whether ``text`` names an image by its suffix (``.png``, ``.jpg`` ...), whether or not it exists."""
    return text.strip().lower().endswith(IMAGE_SUFFIXES)


def read_image(path: str | Path, name: str, *, mode: ImageMode = "L", max_pixels: int = 4096 * 4096) -> np.ndarray:
    """The image at ``path`` as uint8: ``(H, W)`` grey levels 0-255 for ``mode="L"``, ``(H, W, 3)`` for ``"RGB"``.

    ``mode="auto"`` keeps a grey image grey and makes any other one RGB.
    Grey is Pillow's ITU-R 601-2 luma, ``L = 0.299 R + 0.587 G + 0.114 B``. The size is
    checked from the header, before the pixels are decoded: more than ``max_pixels``
    is a ``ValueError``, and so is a file that does not decode. A missing file is a
    ``FileNotFoundError``.
    """
    file = Path(path)
    received = f"Received: {name}={str(file)!r}"
    if not file.is_file():
        raise FileNotFoundError(f"`{name}`: no such file. {received}")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice that; treat the warning as a refusal too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ValueError(
                        f"`{name}`: the image is {height}x{width} pixels ({width * height}), more than the "
                        f"{max_pixels} allowed here; crop or resize it first. {received}"
                    )
                target = mode if mode != "auto" else ("L" if image.mode in GREY_MODES else "RGB")
                pixels = np.asarray(image.convert(target), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"`{name}`: refused as a possible decompression bomb ({error}). {received}") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(
            f"`{name}`: cannot be decoded as an image ({type(error).__name__}: {error}); "
            f"PNG, JPEG, BMP, GIF, TIFF and WebP are read. {received}"
        ) from error
    return pixels


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    """Write uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB pixels as a PNG, atomically; returns the path.

    The image goes to a temporary file in the same folder, which then replaces ``path``
    in one rename, so a reader never sees half a file and an interrupted write leaves
    any earlier file intact.
    """
    target = Path(path)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"`pixels` must be uint8 (H, W) or (H, W, 3). Received: dtype={pixels.dtype}, shape={pixels.shape}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"`out`: the folder {str(target.parent)!r} does not exist. Received: out={str(target)!r}")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".png", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            Image.fromarray(pixels).save(stream, format="PNG")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
