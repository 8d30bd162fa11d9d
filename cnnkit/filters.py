"""Classic hand-made convolution kernels, and applying one to a photograph with torch.

These are the filters the slides show (every kernel of the decks: the vertical-edge kernel
``[[1, 0, -1], ...]``, the Laplacian edge detector, the 1/9 blur, deck 000's ``[-1 2 -1]`` line
detector and 2x2 ``[-1 -1; 1 1]``, deck 004's binary feature identifiers of 3x3, 4x4 and 5x5 ...;
each says where, in ``shown_in``) and their well-known relatives: what a CNN's first layer learns
to approximate. :data:`KERNELS` is a registry of :class:`NamedKernel`; an unknown name is a
``ValueError`` that suggests the nearest ones. :func:`kernel_from` also takes a kernel written
out, fractions allowed (``"1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9"``).

:func:`apply_kernel` computes ``torch.nn.functional.conv2d`` (cross-correlation, as CNNs
do) with "same" output size: the image is padded by ``(k - 1)/2`` on each side (an even kernel
puts the extra row and column at the bottom and right, as torch's ``padding="same"``), by
reflection (``"reflect"``: the row beyond the border mirrors the row inside it, without
repeating the border, like ``numpy.pad(mode="reflect")``) or with zeros (``"zeros"``, which
makes edge detectors respond at the image border). Grey images are filtered once; colour
images either as their grey levels (``L = 0.299 R + 0.587 G + 0.114 B``) or each channel on
its own (``per_channel=True``).

:func:`to_display` turns a response into 0-255 grey levels:

    ``abs``     ``255 * |r| / max |r|``: edge strength, whatever its sign (dark-to-bright or back)
    ``minmax``  ``255 * (r - min r) / (max r - min r)``: signed responses, zero is mid-grey
    ``clip``    ``r`` clipped to 0..255: kernels whose weights sum to 1 (blurs, sharpen, identity)
                keep the image's brightness, so the response is already an image
    ``auto``    ``abs`` for kernels whose weights sum to 0 (edge detectors), ``clip`` for those summing
                to 1, else ``minmax`` (a binary feature identifier, whose response exceeds 255)
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from cnnkit.explain.matrices import inline, parse_matrix
from cnnkit.images import read_image, write_png

Padding = Literal["reflect", "zeros"]
Scale = Literal["auto", "abs", "minmax", "clip"]
PADDINGS = ("reflect", "zeros")
SCALES = ("auto", "abs", "minmax", "clip")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, what Pillow's convert("L") uses


@dataclass(frozen=True)
class NamedKernel:
    """One classic kernel: its name, weights (``kh x kw``, applied as cross-correlation) and what it does."""

    name: str
    weights: tuple[tuple[float, ...], ...]
    description: str  # one line
    shown_in: tuple[str, ...] = ()  # the decks' slides that show it, e.g. "deck 000 (Kernels / Weights / Filters)"

    @property
    def array(self) -> np.ndarray:
        """The weights as a float64 ``(kh, kw)`` array."""
        return np.array(self.weights, dtype=np.float64)

    @property
    def sums_to_zero(self) -> bool:
        """Edge detectors: zero response on a flat image."""
        return bool(abs(self.array.sum()) < 1e-12)

    @property
    def sums_to_one(self) -> bool:
        """Blurs, sharpen, identity: a flat image keeps its brightness."""
        return bool(abs(self.array.sum() - 1) < 1e-9)


KERNELS: dict[str, NamedKernel] = {}


def _kernel(name: str, weights: npt.ArrayLike, description: str, shown_in: tuple[str, ...] = ()) -> NamedKernel:
    rows = np.asarray(weights, dtype=np.float64)
    if rows.ndim != 2 or rows.size == 0 or not np.isfinite(rows).all():
        raise ValueError(f"a kernel must be a non-empty 2-D array of finite numbers. Received: {name} shape={rows.shape}")
    return NamedKernel(name, tuple(tuple(float(v) for v in row) for row in rows), description, shown_in)


def register(name: str, weights: npt.ArrayLike, description: str, shown_in: tuple[str, ...] = ()) -> NamedKernel:
    """Add a kernel to :data:`KERNELS`; a name already taken is a ``ValueError``. Even sides are allowed (the slides' 2x2)."""
    if name in KERNELS:
        raise ValueError(f"a kernel named {name!r} is already registered. Received: name={name!r}")
    kernel = _kernel(name, weights, description, shown_in)
    KERNELS[name] = kernel
    return kernel


def _gaussian_5x5() -> list[list[float]]:
    row = np.array([1.0, 4.0, 6.0, 4.0, 1.0])  # binomial coefficients: a sampled Gaussian with sigma about 1
    return (np.outer(row, row) / 256).tolist()


D000, D001, D002, D003, D004 = "deck 000", "deck 001", "deck 002", "deck 003", "deck 004"

register("vertical-edge", [[1, 0, -1], [1, 0, -1], [1, 0, -1]], "the slides' vertical edge detector: bright left, dark right is positive",
         (f"{D001} (Vertical Edge Detection, the 10 and 0 images; Vertical & Horizontal Edge Detection; Why Convolutional?; Quiz 1, the R slice)",
          f"{D003} (Convolution; Stride; Padding)"))
register("horizontal-edge", [[1, 1, 1], [0, 0, 0], [-1, -1, -1]], "the slides' horizontal edge detector: bright above, dark below is positive",
         (f"{D001} (Vertical & Horizontal Edge Detection)",))
register("vertical-edge-sobel", [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
         "the slides' Sobel vertical edge detector (sobel-x with the sign turned): bright left is positive, centre row weighted 2",
         (f"{D001} (Vertical & Horizontal Edge Detection)",))
register("vertical-line", [[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]], "the slides' vertical line detector: a thin bright vertical line on a darker background",
         (f"{D000} (Kernels / Weights / Filters)",))
register("horizontal-edge-2x2", [[-1, -1], [1, 1]], "the slides' 2x2 horizontal edge detector: dark above, bright below is positive",
         (f"{D000} (Kernels / Weights / Filters)",))
register("x-shape", [[1, 0, 1], [0, 1, 0], [1, 0, 1]], "the slides' 3x3 binary feature identifier: an X, highest where the image has one",
         (f"{D004} (CNN: Convolutions, the calculations; Sliding (Stride = 2); Filter)",))
register("x-shape-variant", [[1, 0, 1], [0, 1, 1], [1, 0, 1]],
         "deck 004's 3x3 filter as its first slides print it (a 1 at row 1, column 2); its calculations use x-shape",
         (f"{D004} (Input Image; Sliding (Stride = 1))",))
register("feature-4x4", [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1]], "the slides' 4x4 binary feature identifier ('occurs in various sizes')",
         (f"{D004} (Filter)",))
register("feature-5x5", [[1, 0, 0, 1, 1], [0, 1, 1, 0, 0], [1, 0, 1, 0, 0], [1, 1, 0, 1, 1], [1, 1, 1, 0, 0]],
         "the slides' 5x5 binary feature identifier ('occurs in various sizes')", (f"{D004} (Filter)",))
register("sobel-x", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "Sobel derivative along x (vertical edges), the centre row weighted 2")
register("sobel-y", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "Sobel derivative along y (horizontal edges), the centre column weighted 2",
         (f"{D000} (Kernels / Weights / Filters)",))
register("scharr-x", [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], "Scharr derivative along x: like Sobel, more even across edge directions")
register("scharr-y", [[-3, -10, -3], [0, 0, 0], [3, 10, 3]], "Scharr derivative along y: like Sobel, more even across edge directions")
register("prewitt-x", [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], "Prewitt derivative along x (vertical edges), rows weighted equally",
         (f"{D001} (Vertical Edge Detection, the 6x6 example; Strided Convolution)",))
register("prewitt-y", [[-1, -1, -1], [0, 0, 0], [1, 1, 1]], "Prewitt derivative along y (horizontal edges), columns weighted equally")
register("laplacian-4", [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "Laplacian, 4 neighbours (the slides' edge detector): edges in every direction",
         (f"{D002} (Convolution; Convolution - Example; Convolution - Stride)",))
register("laplacian-8", [[1, 1, 1], [1, -8, 1], [1, 1, 1]], "Laplacian, 8 neighbours: edges in every direction, diagonals included")
register("box-blur", (np.ones((3, 3)) / 9).tolist(), "3x3 mean (the slides' 1/9 blur filter): every pixel becomes the average of its neighbourhood",
         (f"{D002} (Convolution - Example, Blur Filter)",))
register("box-blur-5x5", (np.ones((5, 5)) / 25).tolist(), "5x5 mean: a stronger blur")
register("gaussian-blur", (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).tolist(), "3x3 Gaussian: a blur that favours the centre")
register("gaussian-blur-5x5", _gaussian_5x5(), "5x5 Gaussian (binomial 1 4 6 4 1): a smoother, stronger blur")
register("sharpen", [[0, -1, 0], [-1, 5, -1], [0, -1, 0]], "sharpen: the image plus its negative Laplacian")
register("emboss", [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], "emboss: a grey relief along the diagonal, as if lit from one corner",
         (f"{D000} (Kernels / Weights / Filters)",))
register("identity", [[0, 0, 0], [0, 1, 0], [0, 0, 0]], "identity: returns the image unchanged")


def get_kernel(name: str) -> NamedKernel:
    """The registered kernel ``name``; an unknown name suggests the nearest."""
    if name in KERNELS:
        return KERNELS[name]
    near = difflib.get_close_matches(name, list(KERNELS), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise ValueError(f"unknown kernel.{hint} `cnnkit filter --list` shows them all. Received: kernel={name!r}")


def kernel_from(value: str | NamedKernel) -> NamedKernel:
    """A registered kernel by name, or a kernel written out (``"1/9 1/9 1/9; ..."``, JSON, a .json/.csv/.npy file).

    A word that is no kernel's name suggests the nearest names; anything else must be a matrix of numbers or fractions.
    """
    if isinstance(value, NamedKernel):
        return value
    if value in KERNELS or re.fullmatch(r"\s*[A-Za-z][\w-]*\s*", value):
        return get_kernel(value.strip())
    weights = parse_matrix(value, "kernel")
    return _kernel("custom", weights, f"the kernel given, [{inline(weights)}]")


def _choice(value: str, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(choices)}. Received: {name}={value!r}")


def apply_kernel(image: np.ndarray, kernel: NamedKernel | str, *, per_channel: bool = False, padding: Padding = "reflect") -> np.ndarray:
    """Filter an image with torch ``conv2d``, "same" size: ``(H, W) -> (H, W)``, ``(H, W, 3) -> (H, W)`` or ``(H, W, 3)``.

    A colour image becomes grey first unless ``per_channel``, which filters R, G and B each
    with the same kernel (a depthwise convolution, ``groups=3``). Returns the raw float64
    response, e.g. negative values for an edge detector on a bright-to-dark edge.
    """
    k = kernel_from(kernel)
    _choice(padding, PADDINGS, "padding")
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 3 and pixels.shape[2] == 3 and not per_channel:
        pixels = pixels @ np.array(LUMA)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"`image` must be (H, W) grey or (H, W, 3) colour. Received: image shape={np.shape(image)}")
    x = torch.from_numpy(np.ascontiguousarray(pixels if pixels.ndim == 3 else pixels[..., None]).transpose(2, 0, 1))[None]  # (1, C, H, W)
    channels = x.shape[1]
    kh, kw = k.array.shape
    # (left, right, top, bottom): "same" size; an even kernel's extra row and column go last, as torch's padding="same"
    pads = ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)
    if padding == "reflect" and (x.shape[2] <= kh // 2 or x.shape[3] <= kw // 2):
        raise ValueError(f"reflect padding needs an image larger than half the kernel ({kh}x{kw}). Received: image shape={pixels.shape}")
    padded = F.pad(x, pads, mode="reflect") if padding == "reflect" else F.pad(x, pads)
    weight = torch.from_numpy(k.array).expand(channels, 1, kh, kw)  # one copy per channel, (C, 1, kh, kw)
    response = F.conv2d(padded, weight, groups=channels)[0].numpy()  # (C, H, W)
    return response[0] if pixels.ndim == 2 else response.transpose(1, 2, 0)


def to_display(response: np.ndarray, scale: Scale = "abs") -> np.ndarray:
    """A filter response as uint8 grey levels (see the module's table of ``scale`` modes; ``auto`` is resolved by the caller)."""
    _choice(scale, SCALES[1:], "scale")
    r = np.asarray(response, dtype=np.float64)
    if scale == "clip":
        out = r
    elif scale == "abs":
        peak = np.abs(r).max()
        out = np.abs(r) * (255 / peak) if peak > 0 else np.zeros_like(r)
    else:
        low, high = r.min(), r.max()
        out = (r - low) * (255 / (high - low)) if high > low else np.zeros_like(r)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class FilterResult:
    """One photograph through one kernel: the settings, the response's range, and the PNG written (if any)."""

    kernel: NamedKernel
    input: str
    size: tuple[int, int]  # (H, W)
    channels: str  # "grey" or "per-channel"
    padding: str
    scale: str  # the resolved mode: abs, minmax or clip
    response: np.ndarray  # (H, W) or (H, W, 3), float64
    display: np.ndarray  # uint8, what the PNG holds
    out: str | None
    pixels: np.ndarray  # the image as read: uint8 (H, W) grey or (H, W, 3) colour

    def to_dict(self) -> dict[str, Any]:
        r = self.response
        return {
            "kernel": self.kernel.name,
            "description": self.kernel.description,
            "weights": [list(row) for row in self.kernel.weights],
            "operation": "cross-correlation (torch.nn.functional.conv2d), same size",
            "input": self.input,
            "size": list(self.size),
            "channels": self.channels,
            "padding": self.padding,
            "scale": self.scale,
            "response": {"min": float(r.min()), "max": float(r.max()), "mean": float(r.mean()), "mean_abs": float(np.abs(r).mean())},
            "out": self.out,
        }


def filter_image(
    path: str | Path, kernel: str | NamedKernel, out: str | Path | None = None, *, per_channel: bool = False,
    padding: Padding = "reflect", scale: Scale = "auto",
) -> FilterResult:
    """Read an image file, filter it with ``kernel`` (a name or a matrix, see :func:`kernel_from`) and, given ``out``,
    write the display PNG atomically."""
    k = kernel_from(kernel)
    _choice(scale, SCALES, "scale")
    pixels = read_image(path, "image", mode="RGB" if per_channel else "L")
    response = apply_kernel(pixels, k, per_channel=per_channel, padding=padding)
    resolved = ("abs" if k.sums_to_zero else "clip" if k.sums_to_one else "minmax") if scale == "auto" else scale
    display = to_display(response, resolved)
    written = None if out is None else str(write_png(out, display))
    return FilterResult(k, str(path), (pixels.shape[0], pixels.shape[1]), "per-channel" if per_channel else "grey", padding,
                        resolved, response, display, written, pixels)


def filter_figure(result: FilterResult) -> Any:
    """The matplotlib figure of ``result``: the image as read | the kernel, each weight written | the response as shown."""
    from cnnkit.explain.panels import draw_matrix, outline, pyplot

    plt = pyplot()
    kernel = result.kernel.array
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout="constrained", gridspec_kw={"width_ratios": [4, 2.2, 4]})
    grey = result.pixels.ndim == 2
    axes[0].imshow(result.pixels, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest")
    axes[0].set_title(f"input ({result.size[0]}x{result.size[1]}, {'grey' if grey else 'colour'})", fontsize=9)
    draw_matrix(axes[1], kernel, f"kernel {result.kernel.name} ({kernel.shape[0]}x{kernel.shape[1]})")
    outline(axes[1], (0, kernel.shape[0] - 1), (0, kernel.shape[1] - 1), label="kernel")
    shown = result.display
    axes[2].imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    axes[2].set_title(f"output, shown as {result.scale} ({result.channels}, {result.padding} padding)", fontsize=9)
    for ax in (axes[0], axes[2]):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{result.kernel.name}: {result.kernel.description}", fontsize=10)
    return fig


def draw_filter(result: FilterResult, path: str | Path, flag: str = "figure") -> Path:
    """Draw :func:`filter_figure` into ``path``, PNG or SVG by its suffix, atomically (``flag`` names it in errors)."""
    from cnnkit.explain.panels import check_figure_path, save_figure

    check_figure_path(path, flag)
    return save_figure(filter_figure(result), path, flag)


def kernel_table() -> list[dict[str, Any]]:
    """Every registered kernel as JSON-ready rows: name, size, weights, description, the slides that show it."""
    return [{"name": k.name, "size": list(k.array.shape), "weights": [list(row) for row in k.weights], "description": k.description,
             "shown_in": list(k.shown_in)} for k in KERNELS.values()]
