"""Denoising: from the image corrupted by ``--noise``, give back the clean one (MSE; PSNR and SSIM, noisy vs denoised).

Training draws the corruption from the batch's seeded generator, so a resumed
run sees the same noise; evaluation draws it from a generator seeded by the
run's seed, so every evaluation of a run corrupts the held-out images alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from cnnkit.data import BatchTransform
from cnnkit.data.noise import Noise
from cnnkit.evaluation import measures
from cnnkit.evaluation.dense import ReconstructionResult
from cnnkit.evaluation.dense_figures import image_grid_figure
from cnnkit.tasks.reconstruct import Reconstruct


class Denoise(Reconstruct):
    """A denoising autoencoder's job (the slides' "Denoising Autoencoder")."""

    name = "denoise"
    defaults: ClassVar[dict[str, Any]] = {"model": "denoising_autoencoder", "noise": "gaussian:0.3", "label_smoothing": 0.0}
    options = ("noise",)
    zoo_kwargs: ClassVar[dict[str, Any]] = {"noise": 0.0}  # the denoising autoencoder's own noise layer is off: the task corrupts the inputs
    output_word = "denoised"
    figure_name = "denoising"
    report_sections = (("denoising", "denoising", "Noisy, denoised and clean held-out images"),)

    def __init__(self, *, noise: str | None = None, tta: bool = False) -> None:
        super().__init__(noise=noise, tta=tta)
        if noise is None:
            raise ValueError("--task denoise needs --noise, e.g. gaussian:0.3")
        self.noise = Noise.parse(noise)

    def __str__(self) -> str:
        return f"denoise {self.noise}"

    def draws(self, transform: BatchTransform) -> bool:
        return True  # the corruption

    def corrupt(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return self.noise(clean, generator)

    def add_input_scores(self, result: ReconstructionResult, sums: dict[str, float], count: int) -> None:
        result.noise = str(self.noise)
        result.mse_noisy = round(sums["mse_noisy"] / count, 6)
        result.psnr_noisy = round(sums["psnr_noisy"] / count, 4)
        result.ssim_noisy = round(sums["ssim_noisy"] / count, 4)

    def figure(self, result: ReconstructionResult, shown: dict[str, torch.Tensor], path: Path, title: str) -> Path:
        """Noisy inputs, their denoised outputs and the clean images, the first two with their PSNR."""
        psnr = {key: [f"{v:.1f} dB" for v in measures.psnr(shown[key], shown["clean"])] for key in ("input", "output")}
        noisy = f"noisy ({result.noise})"
        rows = [(noisy, shown["input"]), ("denoised", shown["output"]), ("clean", shown["clean"])]
        heading = (f"{title}): PSNR {result.psnr_noisy:.2f} dB noisy -> {result.psnr:.2f} dB denoised, "
                   f"SSIM {result.ssim_noisy:.3f} -> {result.ssim:.3f}")
        image_grid_figure(rows, path, heading, {noisy: psnr["input"], "denoised": psnr["output"]})
        return path
