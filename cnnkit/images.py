"""Image files in and out: the one path from a file to a network input, and the readers and writers beside it.

A network sees a file the way its training data was read. :class:`ImagePrep`
records how (channels, size, the crop-or-stretch policy, the resampling
filter and the normalisation); :func:`input_from_file` applies it:

1. decode with Pillow by the one policy every command shares (:func:`open_upright`):
   upright by the camera's EXIF orientation; deeper than 8 bits scaled, not
   clipped, to 0-255 (16-bit grey divided by 257; float images read as
   levels in [0, 1]); transparency dropped (the stored colour kept); more
   pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` refused from the header, before
   decoding, as a possible decompression bomb;
2. RGB, the centre cut to the target aspect ratio (``fit="crop"``, what
   ``folder:`` datasets do) or the whole image (``fit="stretch"``, what
   pretrained weights without a crop expect), resized to ``(H, W)``;
3. grey when the network takes one channel: a grey file's own levels, else
   ITU-R 601 luma of the RGB pixels (:func:`cnnkit.data.convert.to_grayscale`,
   as datasets do);
4. scaled to [0, 1] and normalised by the batch transform that evaluation uses.

``folder:`` datasets call steps 1-3 through :func:`decode` and
:func:`to_channels`, so a training file and the same file given to
``cnnkit predict`` become the same tensor. :func:`read_image` (a file as a
matrix of grey levels, for ``cnnkit explain`` and ``cnnkit filter``),
:func:`read_class_ids` (a segmentation mask) and :func:`write_png` are the
other ways cnnkit touches image files.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnkit.fileio import atomic_write, check_regular

MAX_FILE_BYTES = 512 << 20  # an image file larger than this is refused before it is read
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # what image folders read
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")  # what a named file may be
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")  # one channel of class ids (palette: its indices)
_ORIENTATION = 0x0112  # the EXIF tag of the camera's rotation
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)
Fit = Literal["crop", "stretch"]
ImageMode = Literal["L", "RGB", "auto"]  # "auto": grey stays grey (H, W), anything else becomes RGB


class BadImage(Exception):
    """A file that cannot be used, with the reason; callers raise it as ValueError or record it."""


@dataclass(frozen=True)
class ImagePrep:
    """How an image file becomes a network input: recorded in a run's model card, or a pretrained weight set's."""

    input_shape: tuple[int, int, int]  # (C, H, W): 1 channel reads images as grey, 3 as RGB
    fit: Fit = "crop"  # crop: the centre at the target aspect ratio, then resize; stretch: resize the whole image
    interpolation: str = "bilinear"  # or "bicubic"
    mean: tuple[float, ...] | None = None  # per channel, on pixels scaled to [0, 1]; None: not normalised
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.fit not in ("crop", "stretch") or self.interpolation not in _RESAMPLE:
            raise ValueError(f"image preparation: fit must be crop or stretch and interpolation one of "
                             f"{', '.join(_RESAMPLE)}. Received: fit={self.fit!r}, interpolation={self.interpolation!r}")
        if len(self.input_shape) != 3 or self.input_shape[0] not in (1, 3):
            raise ValueError(f"image preparation: the input must be (C, H, W) with 1 or 3 channels. "
                             f"Received: {self.input_shape}")

    @property
    def size(self) -> tuple[int, int]:
        return (self.input_shape[1], self.input_shape[2])

    def record(self) -> dict[str, Any]:
        """What a model card stores beside the input shape and the normalisation."""
        return {"fit": self.fit, "interpolation": self.interpolation}

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` uint8 -> float, on [0, 1] and normalised: evaluation's own batch transform."""
        from cnnkit.data.transforms import BatchTransform

        return BatchTransform(mean=self.mean, std=self.std)(pixels, train=False)

    def to_source(self, boxes: torch.Tensor, source: tuple[int, int]) -> torch.Tensor:
        """Boxes ``(..., 4)`` ``(x0, y0, x1, y1)`` in the prepared input's pixels -> in the pixels of the file it
        came from, of ``source`` = (width, height): the crop or stretch undone.

        >>> ImagePrep((3, 16, 16)).to_source(torch.tensor([0.0, 0.0, 16.0, 8.0]), (80, 40)).tolist()
        [20.0, 0.0, 60.0, 20.0]
        """
        h, w = self.size
        left, top, right, bottom = crop_box(source, self.size) if self.fit == "crop" else (0, 0, *source)
        scale = torch.tensor([(right - left) / w, (bottom - top) / h] * 2, dtype=torch.float32)
        return boxes.float() * scale + torch.tensor([left, top, left, top], dtype=torch.float32)

    def mask_to_source(self, mask: torch.Tensor, source: tuple[int, int]) -> np.ndarray:
        """A mask ``(H, W)`` bool on the prepared input -> ``(height, width)`` bool on the file it came from, of
        ``source`` = (width, height): resized into the region the input was cut from (outside it: False)."""
        left, top, right, bottom = crop_box(source, self.size) if self.fit == "crop" else (0, 0, *source)
        region = (max(1, round(right - left)), max(1, round(bottom - top)))
        picture = Image.fromarray(mask.cpu().numpy().astype(np.uint8) * 255).resize(region, Image.Resampling.BILINEAR)
        out = np.zeros((source[1], source[0]), dtype=bool)
        x0, y0 = round(left), round(top)
        part = np.asarray(picture) >= 128
        out[y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part[:source[1] - y0, :source[0] - x0]
        return out

    def show(self, x: torch.Tensor) -> np.ndarray:
        """A prepared ``(C, H, W)`` input back as a picture: ``(H, W)`` or ``(H, W, 3)`` float on [0, 1]."""
        if self.mean is not None and self.std is not None:
            x = x * torch.tensor(self.std).view(-1, 1, 1) + torch.tensor(self.mean).view(-1, 1, 1)
        picture = x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return picture[..., 0] if picture.shape[-1] == 1 else picture


def crop_box(source: tuple[float, float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centre of an image of ``source`` = (width, height) cut to the aspect ratio of ``size`` = (H, W).

    Resizing that box, not the whole image, keeps the content from being squashed; it is Pillow's
    ``box`` argument ``(left, top, right, bottom)``.

    >>> crop_box((80, 40), (16, 16))
    (20.0, 0.0, 60.0, 40.0)
    """
    (src_w, src_h), (h, w) = source, size
    scale = min(src_w / w, src_h / h)
    crop_w, crop_h = w * scale, h * scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return (left, top, left + crop_w, top + crop_h)


def pixel_limit() -> int:
    """The most pixels any image file may have: Pillow's decompression-bomb limit (raise
    ``PIL.Image.MAX_IMAGE_PIXELS`` for genuine larger images), for every command alike."""
    return Image.MAX_IMAGE_PIXELS or 1 << 62


def _eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with 8-bit levels: 16-bit (and 32-bit integer) grey is scaled by 255/65535, float grey read as
    [0, 1]; Pillow's own conversion would clip them instead (a dark 16-bit image would become white)."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        levels = np.asarray(image, dtype=np.float64)
        levels = levels * 255.0 if image.mode == "F" else levels / 257.0
        return Image.fromarray(np.clip(np.round(levels), 0, 255).astype(np.uint8), "L")
    return image


def open_upright(path: Path, *, max_pixels: int | None = None,
                 draft: tuple[int, int] | None = None) -> tuple[Image.Image, bool]:
    """The image at ``path``, decoded by the one policy of the module doc: 8-bit ``"L"`` or ``"RGB"``, upright, and
    whether it was stored grey. :class:`BadImage` says why a file cannot be used.

    ``max_pixels`` lowers the pixel limit (:func:`pixel_limit`) for a command that shows every pixel; ``draft`` =
    (width, height) lets a JPEG decode at a reduced scale when it is much larger than what is needed (the image
    returned is then smaller than the file's: :func:`open_sized` also says the file's own size).
    """
    image, grey, _, _ = open_sized(path, max_pixels=max_pixels, draft=draft)
    return image, grey


_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that turn the image a quarter: its width and height swap
_UPRIGHT: dict[int, Any] = {  # where a stored point (x, y) of a w x h image lands upright, by EXIF orientation
    2: lambda x, y, w, h: (w - x, y), 3: lambda x, y, w, h: (w - x, h - y), 4: lambda x, y, w, h: (x, h - y),
    5: lambda x, y, w, h: (y, x), 6: lambda x, y, w, h: (h - y, x), 7: lambda x, y, w, h: (h - y, w - x),
    8: lambda x, y, w, h: (y, w - x)}  # (as ImageOps.exif_transpose turns it: 6 is a quarter turn clockwise)


def open_sized(path: Path, *, max_pixels: int | None = None, draft: tuple[int, int] | None = None
               ) -> tuple[Image.Image, bool, tuple[int, int], tuple[float, float, float, float]]:
    """:func:`open_upright`, the file's own (width, height) upright, whatever scale ``draft`` decoded it at (what a
    mask or an annotation of the file is measured against), and the region ``(left, top, right, bottom)`` of the
    decoded image that holds the file's pixels: all of it, but for a reduced-scale JPEG whose sides are not a
    multiple of the scale (1001 pixels at 1/8 decode to 126 that hold 125.125 of them), upright."""
    try:
        check_regular(path, MAX_FILE_BYTES)
    except (OSError, ValueError) as error:
        raise BadImage(str(error).removeprefix(f"{path}: ")) from None
    bomb = pixel_limit()
    try:
        with Image.open(path) as image:
            pixels = image.width * image.height
            # Pillow raises above twice its limit and only warns between the two; refuse those too.
            # (Checked here, not with warnings.catch_warnings: that is process-wide and this runs in threads.)
            if pixels > bomb:
                raise BadImage(f"refused as a possible decompression bomb ({image.width}x{image.height} = {pixels:,} "
                               f"pixels, more than PIL.Image.MAX_IMAGE_PIXELS = {bomb:,}); raise that limit if the "
                               f"image is genuine")
            if max_pixels is not None and pixels > max_pixels:
                raise BadImage(f"is {image.height}x{image.width} pixels ({pixels:,}), more than the {max_pixels:,} "
                               f"allowed here; crop or resize it first")
            grey = image.mode in GREY_MODES
            stored = image.size
            drafted = image.draft("RGB" if not grey else "L", draft) if draft is not None else None
            w, h = image.size
            orientation = image.getexif().get(0x0112)  # 0x0112: Orientation
            upright = _eight_bit(ImageOps.exif_transpose(image))  # photos store their rotation in EXIF
            # a quarter turn swaps the sides: seen in the result, or (a square draft) in the orientation it obeyed
            turned = upright.size != (w, h) if w != h else orientation in _SWAPS_SIDES
            own = (stored[1], stored[0]) if turned else stored
            region: tuple[float, float, float, float] = (0.0, 0.0, float(upright.width), float(upright.height))
            if drafted is not None and drafted[1] is not None:  # a JPEG at a reduced scale: its pixels' extent
                corners = [(0.0, 0.0), drafted[1][2:]]
                if orientation in _UPRIGHT:
                    corners = [_UPRIGHT[orientation](x, y, w, h) for x, y in corners]
                (x0, y0), (x1, y1) = corners
                region = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            decoded = upright.convert("L" if grey else "RGB")
    except BadImage:
        raise
    except Image.DecompressionBombError as error:
        raise BadImage(f"refused as a possible decompression bomb ({error}); raise PIL.Image.MAX_IMAGE_PIXELS "
                       f"(now {Image.MAX_IMAGE_PIXELS}) if the image is genuine") from error
    except _DECODE_ERRORS as error:
        raise BadImage(f"cannot be decoded as an image ({type(error).__name__}: {error})") from error
    return decoded, grey, own, region


@contextlib.contextmanager
def bomb_warning_silenced() -> Iterator[None]:
    """Pillow's DecompressionBombWarning off inside the block: :func:`open_upright` refuses such images itself,
    with its own reason. (``warnings`` filters are process-wide: for one thread, or a worker process.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def decode(path: Path, size: tuple[int, int], fit: Fit = "crop",
           interpolation: str = "bilinear") -> tuple[np.ndarray, bool, tuple[int, int]]:
    """``(H, W, 3) uint8`` pixels of the image at ``path`` fitted to ``size``, whether it was stored grey, and its
    own (width, height) upright (a large JPEG is decoded at a reduced scale: not that scale's size, the file's);
    :class:`BadImage` if it cannot be read."""
    if path.suffix.lower() not in EXTENSIONS:
        raise BadImage(f"not an image file (extensions read: {', '.join(EXTENSIONS)})")
    h, w = size
    image, grey, own, region = open_sized(path, draft=(w, h))
    with image:
        rgb = image.convert("RGB")
    left, top, right, bottom = region  # the decoded pixels that hold the file's (a reduced-scale JPEG: not all)
    box = region
    if fit == "crop":
        x0, y0, x1, y1 = crop_box((right - left, bottom - top), size)
        box = (left + x0, top + y0, left + x1, top + y1)
    resized = rgb.resize((w, h), _RESAMPLE[interpolation], box=box)
    return np.array(resized, dtype=np.uint8), grey, own  # a writable copy


def to_channels(images: torch.Tensor, channels: int, stored_grey: bool) -> torch.Tensor:
    """``(N, 3, H, W)`` decoded uint8 -> ``(N, channels, H, W)``: one channel is the stored grey levels when every
    image was stored grey (its three channels are equal), else their luma."""
    from cnnkit.data.convert import to_grayscale

    if channels == 3:
        return images
    return images[:, :1].contiguous() if stored_grey else to_grayscale(images)


def read_pixels(path: str | Path, prep: ImagePrep) -> torch.Tensor:
    """The file at ``path`` as the network's data holds it: ``(C, H, W)`` uint8; ``OSError`` naming the file."""
    try:
        pixels, grey, _ = decode(Path(path), prep.size, prep.fit, prep.interpolation)
    except BadImage as error:
        raise OSError(f"cannot read image {str(path)!r}: {error}") from None
    rgb = torch.from_numpy(pixels).permute(2, 0, 1)[None]  # (1, 3, H, W)
    return to_channels(rgb, prep.input_shape[0], grey)[0]


def input_from_file(path: str | Path, prep: ImagePrep) -> torch.Tensor:
    """The file at ``path`` as the network input: ``(C, H, W)`` float, prepared as ``prep`` says (module doc)."""
    return prep.normalise(read_pixels(path, prep)[None])[0]


def source_size(path: str | Path) -> tuple[int, int]:
    """The (width, height) of the image file at ``path`` as it is read upright (the EXIF orientation applied)."""
    image, _ = open_upright(Path(path))
    with image:
        return image.size


def expand_folders(paths: Sequence[str | Path]) -> list[str]:
    """Each folder of ``paths`` replaced by the image files below it (by extension, sorted, hidden ones left out);
    files are kept as given. A folder without images is a ValueError naming it."""
    files: list[str] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            files.append(str(given))
            continue
        found = sorted(str(f) for f in path.rglob("*") if f.suffix.lower() in EXTENSIONS and f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(path).parts))
        if not found:
            raise ValueError(f"{path}: a folder without image files ({', '.join(EXTENSIONS)}). Received: {given}")
        files += found
    return files


def is_image_path(text: str) -> bool:
    """Whether ``text`` names an image by its suffix (``.png``, ``.jpg`` ...), whether or not it exists."""
    return text.strip().lower().endswith(IMAGE_SUFFIXES)


def read_image(path: str | Path, name: str, *, mode: ImageMode = "L", max_pixels: int | None = None) -> np.ndarray:
    """The image at ``path`` as uint8: ``(H, W)`` grey levels 0-255 for ``mode="L"``, ``(H, W, 3)`` for ``"RGB"``.

    Decoded by :func:`open_upright`, as networks read files (upright, 16-bit scaled), at full size.
    ``mode="auto"`` keeps a grey image grey and makes any other one RGB. Grey is a grey file's own
    levels, else ITU-R 601-2 luma ``0.299 R + 0.587 G + 0.114 B`` rounded, as datasets compute it.
    More than ``max_pixels`` (checked from the header) or a file that does not decode is a
    ``ValueError``; a missing file is a ``FileNotFoundError``.
    """
    from cnnkit.data.convert import to_grayscale

    file = Path(path)
    received = f"Received: {name}={str(file)!r}"
    if not file.exists():
        raise FileNotFoundError(f"`{name}`: no such file. {received}")
    try:
        image, grey = open_upright(file, max_pixels=max_pixels)
    except BadImage as error:
        formats = "; PNG, JPEG, BMP, GIF, TIFF and WebP are read" if "decoded" in str(error) else ""
        raise ValueError(f"`{name}`: {error}{formats}. {received}") from None
    with image:
        if mode == "RGB" or (mode == "auto" and not grey):
            return np.array(image.convert("RGB"), dtype=np.uint8)
        if grey:
            return np.array(image, dtype=np.uint8)
        rgb = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None]
    return to_grayscale(rgb)[0, 0].numpy()


def read_class_ids(path: Path) -> np.ndarray:
    """The mask at ``path`` as ``(H, W) int64`` class ids; :class:`BadImage` if it is not a one-channel image."""
    try:
        check_regular(path, MAX_FILE_BYTES)
    except (OSError, ValueError) as error:
        raise BadImage(str(error).removeprefix(f"{path}: ")) from None
    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > pixel_limit():
                raise BadImage(f"refused as a possible decompression bomb ({opened.width}x{opened.height} pixels, "
                               f"more than PIL.Image.MAX_IMAGE_PIXELS = {pixel_limit():,})")
            mask = ImageOps.exif_transpose(opened)  # upright, as its image is read
            if mask.mode in MASK_MODES:
                ids = np.asarray(mask).astype(np.int64)  # palette images give their indices, "1" gives 0/1
            else:
                rgb = np.asarray(mask.convert("RGB"))
                if not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
                    raise BadImage(f"is a colour ({mask.mode}) image; a mask must be one channel whose values are class "
                                   f"ids (a grey or palette PNG)")
                ids = rgb[..., 0].astype(np.int64)
    except _DECODE_ERRORS as error:
        raise BadImage(f"cannot be decoded as a mask ({type(error).__name__}: {error})") from error
    return ids


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB pixels encoded as a PNG file's bytes."""
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"`pixels` must be uint8 (H, W) or (H, W, 3). Received: dtype={pixels.dtype}, shape={pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    """Write uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB pixels as a PNG, atomically; returns the path.

    The image goes to a temporary file in the same folder, which then replaces ``path``
    in one rename, so a reader never sees half a file and an interrupted write leaves
    any earlier file intact.
    """
    target = Path(path)
    data = png_bytes(pixels)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"`out`: the folder {str(target.parent)!r} does not exist. Received: out={str(target)!r}")
    atomic_write(target, data)
    return target


def write_tensor_png(path: Path, pixels: torch.Tensor) -> None:
    """``(C, H, W)`` or ``(H, W)`` uint8 -> a grey or RGB PNG at ``path``, written atomically."""
    array = pixels.cpu().numpy()
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    atomic_write(path, png_bytes(array))
