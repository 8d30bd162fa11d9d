"""Convolutional autoencoders: an encoder squeezes the image into ``latent`` numbers, a decoder rebuilds it.

The decoder mirrors the encoder with transposed convolutions, and a sigmoid
puts the reconstruction in [0, 1] like the input pixels, so training minimises
a reconstruction loss (MSE or binary cross-entropy) between output and input.
A denoising autoencoder is the same network fed corrupted images and asked for
the clean ones (the slides' "Denoising Autoencoder").
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit import arith
from cnnkit.models._common import check_input, positive, probability
from cnnkit.models.registry import register


class GaussianNoise(nn.Module):
    """Adds ``N(0, std^2)`` noise and clips to [0, 1] while training; the identity in eval mode. Shape unchanged."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return (x + self.std * torch.randn_like(x)).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class ConvAutoencoder(nn.Module):
    """Two stride-2 3x3 convolutions, a dense bottleneck of ``latent`` units, and the mirror image back.

    ``(N, C, H, W) -> (N, C, H, W)`` in [0, 1]; ``encode``: ``(N, C, H, W) -> (N, latent)``,
    ``decode``: ``(N, latent) -> (N, C, H, W)``.
    """

    def __init__(self, name: str, in_channels: int, input_size: tuple[int, int], latent: int, width: int,
                 noise: float = 0.0) -> None:
        super().__init__()
        self.name = name
        self.in_channels = in_channels
        self.input_size = input_size
        # encoder sizes: ceil(n / 2) per stride-2 convolution, e.g. 28 -> 14 -> 7
        half = arith.conv_output_size(input_size, 3, stride=2, padding=1)
        quarter = arith.conv_output_size(half, 3, stride=2, padding=1)
        flat = 2 * width * quarter[0] * quarter[1]
        self.encoder = nn.Sequential(
            GaussianNoise(noise) if noise else nn.Identity(),
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(flat, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, flat), nn.ReLU(),
            nn.Unflatten(1, (2 * width, quarter[0], quarter[1])),
            nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=_output_padding(quarter, half)),
            nn.ReLU(),
            nn.ConvTranspose2d(width, in_channels, 3, stride=2, padding=1, output_padding=_output_padding(half, input_size)),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, latent)``: the code the decoder must rebuild the image from."""
        check_input(self.name, x, self.in_channels, self.input_size)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent) -> (N, C, H, W)``, pixels in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _output_padding(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """Output padding that makes a 3x3/2 transposed convolution (padding 1) grow ``size`` back to ``target``.

    Without it the decoder gives ``2n - 1``; an encoder step gives ``ceil(n/2)``,
    so odd and even sides need 0 and 1 extra pixels.
    """
    height, width = arith.conv_transpose_output_worked(size, 3, stride=2, padding=1)
    return target[0] - height.value, target[1] - width.value


def _build(name: str, in_channels: int, input_size: arith.IntOrPair, latent: int, width: int, noise: float) -> ConvAutoencoder:
    size = arith.pair(input_size, "input_size", minimum=4)
    return ConvAutoencoder(name, in_channels, size, int(positive(name, "latent", latent)),
                           int(positive(name, "width", width)), noise)


@register(kind="autoencoder", input_size=(28, 28))
def conv_autoencoder(in_channels: int = 1, input_size: arith.IntOrPair = 28, latent: int = 32, width: int = 32) -> nn.Module:
    """Convolutional autoencoder: encoder, a ``latent``-unit code, decoder with transposed convolutions.

    ``(N, 1, 28, 28) -> (N, 1, 28, 28)``, sigmoid output; ``model.encode(x)`` gives the ``(N, latent)`` code.
    """
    return _build("conv_autoencoder", in_channels, input_size, latent, width, 0.0)


@register(kind="autoencoder", input_size=(28, 28))
def denoising_autoencoder(in_channels: int = 1, input_size: arith.IntOrPair = 28, latent: int = 64, width: int = 32,
                          noise: float = 0.3) -> nn.Module:
    """Denoising autoencoder: Gaussian noise (std ``noise``) corrupts the input in training; the target stays clean.

    ``(N, 1, 28, 28) -> (N, 1, 28, 28)``, sigmoid output. Train it with the
    clean image as target; in eval mode it denoises what it is given.
    """
    return _build("denoising_autoencoder", in_channels, input_size, latent, width, probability("denoising_autoencoder", "noise", noise))
