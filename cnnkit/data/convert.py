"""Dataset-wide image conversions done once at load time: resizing and grey <-> RGB.

They work on whole ``(N, C, H, W) uint8`` tensors; the grey conversion goes
in chunks, so that its float copy never holds more than a few thousand images.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from cnnkit.data.dataset import ImageDataset

_CHUNK = 4096
# ITU-R 601-2 luma, the weights Pillow's convert("L") uses, so a folder loaded grey matches one converted here
_LUMA = (0.299, 0.587, 0.114)


def image_size_pair(image_size: int | tuple[int, int], argument: str = "image_size") -> tuple[int, int]:
    """``(H, W)`` from an int (square) or a pair; a ValueError naming ``argument`` for anything else."""
    from cnnkit.cardcheck import MAX_SIDE

    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIDE for v in pair):
        raise ValueError(
            f"`{argument}` must be an int from 1 to {MAX_SIDE} or a pair (height, width) of them. Received: "
            f"{argument}={image_size!r}"
        )
    return (pair[0], pair[1])


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, C, H, W) uint8 -> (N, C, size[0], size[1]) uint8``, bilinear with antialiasing (CPU tensors).

    PyTorch resizes uint8 directly on the CPU (the path torchvision uses), about
    four times faster than a float round trip and without a float copy of the set.
    """
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W) uint8 -> (N, 1, H, W) uint8`` by the ITU-R 601-2 luma weights; one channel passes through."""
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(_LUMA, device=images.device).view(1, 3, 1, 1)
    out = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8, device=images.device)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start : start + _CHUNK].float()
        out[start : start + _CHUNK] = (chunk * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    return out


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W) uint8 -> (N, 3, H, W) uint8`` by repeating the channel; three channels pass through."""
    return images if images.shape[1] == 3 else images.expand(-1, 3, -1, -1).contiguous()


def conform(ds: ImageDataset, image_size: tuple[int, int] | None, grayscale: bool | None) -> ImageDataset:
    """``ds`` resized to ``image_size`` and converted to 1 (``grayscale=True``) or 3 channels (``False``).

    ``None`` keeps the dataset's own size or channels. Resizing is for datasets
    without boxes or masks (those are drawn at the asked size by their generator).
    """
    from cnnkit.memory import check_data_fits

    images = ds.images
    size = image_size if image_size is not None else tuple(images.shape[-2:])
    channels = 3 if grayscale is False else 1 if grayscale is True else images.shape[1]
    check_data_fits(images.shape[0], (channels, *size), f"dataset {ds.name!r} at image size {size[0]}x{size[1]}")
    if grayscale is True:
        images = to_grayscale(images)
    if image_size is not None and tuple(images.shape[-2:]) != image_size:
        if ds.boxes is not None or ds.masks is not None or ds.segmentation is not None:
            raise ValueError(
                f"dataset {ds.name!r} has boxes or masks, which resizing would not keep exact; draw it at the size "
                f"wanted instead. Received: image_size={image_size}, images of {tuple(images.shape[-2:])}"
            )
        images = resize_images(images, image_size)
    if grayscale is False:  # after resizing: one channel is a third of the work
        images = to_rgb(images)
    return ds if images is ds.images else replace(ds, images=images)
