"""Corruptions for denoising: Gaussian noise and salt-and-pepper, on pixels scaled to [0, 1].

A denoising autoencoder learns to map a corrupted image back to the clean one
(the slides' "Denoising Autoencoder"). The corruption is named in one short
string, so that it fits a command-line flag and a run's ``config.json``::

    gaussian:0.3     x + 0.3 * N(0, 1) per value, clipped to [0, 1]
    saltpepper:0.1   10% of the pixels set to black or white (half each), all channels alike

Every draw comes from the ``generator`` given, so a training batch's noise is
fixed by the batch's seed and a resumed run sees the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NOISE_KINDS = ("gaussian", "saltpepper")
NOISE_EXAMPLES = "gaussian:0.3 (standard deviation on [0, 1] pixels) or saltpepper:0.1 (fraction of pixels)"


@dataclass(frozen=True)
class Noise:
    """One corruption: ``kind`` (gaussian or saltpepper) and its ``amount`` (std, or fraction of pixels)."""

    kind: str
    amount: float

    @classmethod
    def parse(cls, text: str) -> Noise:
        """``"gaussian:0.3"`` -> ``Noise("gaussian", 0.3)``; a ValueError names the rule and what was received."""
        kind, _, value = text.strip().partition(":")
        if kind not in NOISE_KINDS or not value:
            raise ValueError(f"--noise must be KIND:AMOUNT, e.g. {NOISE_EXAMPLES}. Received: --noise {text!r}")
        try:
            amount = float(value)
        except ValueError:
            raise ValueError(f"--noise {kind}: the amount must be a number, e.g. {NOISE_EXAMPLES}. "
                             f"Received: --noise {text!r}") from None
        if not 0.0 < amount <= 1.0:
            what = "standard deviation" if kind == "gaussian" else "fraction of pixels"
            raise ValueError(f"--noise {kind}: the {what} must be in (0, 1]. Received: --noise {text!r}")
        return cls(kind, amount)

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` (``(N, C, H, W)`` float in [0, 1]) corrupted, clipped to [0, 1]; same shape and dtype.

        Draws are made on the generator's device and moved to ``x``'s, as the batch transforms do.
        """
        if not x.is_floating_point() or x.dim() != 4:
            raise ValueError(f"Noise: `x` must be a float batch (N, C, H, W) on [0, 1]. "
                             f"Received: dtype={x.dtype}, shape={tuple(x.shape)}")
        where = generator.device if generator is not None else x.device
        if self.kind == "gaussian":
            noise = torch.randn(x.shape, generator=generator, device=where, dtype=x.dtype).to(x.device)
            return (x + self.amount * noise).clamp_(0.0, 1.0)
        n, _, h, w = x.shape
        u = torch.rand((n, 1, h, w), generator=generator, device=where).to(x.device)  # one draw per pixel
        # u < amount / 2: pepper (0); amount / 2 <= u < amount: salt (1); elsewhere the pixel is kept
        out = x.masked_fill(u < self.amount / 2, 0.0)
        return out.masked_fill((u >= self.amount / 2) & (u < self.amount), 1.0)
