"""U-Net (Ronneberger et al. 2015): an encoder-decoder for segmentation, with skip connections.

The encoder finds *what* is in the image while it shrinks it; the decoder
recovers *where* with transposed convolutions, and the skip connections hand it
the encoder's high-resolution maps (the slides' "What does U-Net give?"). It is
fully convolutional: no dense layers, any input whose sides are multiples of 16.
The convolutions are padded (the paper's are not), so the output map has the
input's size and the skips need no cropping.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.models._common import check_input, positive
from cnnkit.models.registry import register

DEPTH = 4  # poolings in the encoder; the input must be divisible by 2**DEPTH


def double_conv(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions (padding 1) with ReLU, optionally with BN: ``(N, C_in, H, W) -> (N, C_out, H, W)``."""
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def nearest_multiples(size: int, multiple: int) -> tuple[int, ...]:
    """The multiples of ``multiple`` just below and above ``size`` (only the one above when below would be 0)."""
    below = size // multiple * multiple
    return (below, below + multiple) if below > 0 else (below + multiple,)


class Up(nn.Module):
    """Decoder step: 2x2 transposed conv doubling the size and halving the channels, concat the skip, double conv."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = double_conv(2 * out_channels, out_channels, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (N, C_out, 2H, 2W)
        return self.conv(torch.cat([skip, x], dim=1))  # (N, 2*C_out, 2H, 2W) -> (N, C_out, 2H, 2W)


class UNet(nn.Module):
    """``(N, C, H, W) -> (N, num_classes, H, W)`` per-pixel class logits; H and W multiples of 16."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        widths = [width * 2**i for i in range(DEPTH + 1)]  # 64, 128, 256, 512, 1024
        self.inc = double_conv(in_channels, widths[0], batch_norm)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(widths[i], widths[i + 1], batch_norm)) for i in range(DEPTH)
        )
        self.up = nn.ModuleList(Up(widths[i + 1], widths[i], batch_norm) for i in reversed(range(DEPTH)))
        self.outc = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("unet", x, self.in_channels)
        multiple = 2**DEPTH
        height, width = int(x.shape[2]), int(x.shape[3])
        if height % multiple or width % multiple:
            bad = [(side, n) for side, n in (("height", height), ("width", width)) if n % multiple]
            hints = "; ".join(f"{side} {n}: use {' or '.join(map(str, nearest_multiples(n, multiple)))}" for side, n in bad)
            raise ValueError(
                f"unet: the input's height and width must be multiples of {multiple} (it halves them {DEPTH} times "
                f"and the decoder doubles them back); nearest valid sizes for {hints}. "
                f"Received: input shape={tuple(x.shape)}"
            )
        skips = [self.inc(x)]  # (N, w, H, W)
        for down in self.down:
            skips.append(down(skips[-1]))  # ... (N, 16w, H/16, W/16)
        out = skips.pop()
        for up in self.up:
            out = up(out, skips.pop())  # ... (N, w, H, W)
        return self.outc(out)  # (N, num_classes, H, W)


@register(kind="segmentation", input_size=(128, 128))
def unet(num_classes: int = 2, in_channels: int = 3, width: int = 64, batch_norm: bool = True) -> nn.Module:
    """U-Net: encoder-decoder with skip connections and transposed convolutions, per-pixel classes.

    ``(N, 3, H, W) -> (N, num_classes, H, W)`` for H, W multiples of 16;
    ``width`` is the first stage's channels (64 in the paper, 31,037,698
    parameters at 3 channels and 2 classes; 16 is plenty for small data).
    """
    return UNet(num_classes, in_channels, int(positive("unet", "width", width)), bool(batch_norm))
