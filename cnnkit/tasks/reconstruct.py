"""Reconstruction: an autoencoder gives back the image itself, through its bottleneck (MSE; PSNR, SSIM).

The network's input is the image's pixels on [0, 1], not normalised ones, so
that its input and its target share one scale (the autoencoders end in a
sigmoid) and "give back the input" is a meaningful baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset, to_float
from cnnkit.evaluation import measures
from cnnkit.evaluation.dense import ReconstructionResult
from cnnkit.evaluation.dense_figures import image_grid_figure
from cnnkit.images import ImagePrep, write_tensor_png
from cnnkit.runtime import Runtime
from cnnkit.tasks.base import SHOWN, EvalContext, Shape, Task
from cnnkit.tasks.outputs import ImageOutput


class Reconstruct(Task):
    """Give back the input image: the target is the (geometrically augmented) image on [0, 1]."""

    name = "reconstruct"
    metric = "psnr"
    zoo_kind = "autoencoder"
    defaults: ClassVar[dict[str, Any]] = {"model": "conv_autoencoder", "label_smoothing": 0.0}
    table_hint = " (the image's own shape); end it in a layer with the image's channels"
    output_words = "the image, pixels on [0, 1]"
    normalises = False
    smooths_labels = False
    needs_classes = False
    output_word: ClassVar[str] = "reconstructed"  # cnnkit predict writes NAME.<output_word>.png
    figure_name: ClassVar[str] = "reconstructions"  # cnnkit evaluate's figure, <figure_name>.png
    report_sections = (("reconstructions", "reconstructions", "Reconstructions of held-out images"),)

    def corrupt(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The network's input made from the clean ``(B, C, H, W)`` [0, 1] image (here: the image itself)."""
        return clean

    def targets(self, data: ImageDataset) -> torch.Tensor:
        return data.labels  # unused: the target is the image itself (prepare)

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        moved, _ = transform.geometric(images, None, generator, train)  # a crop or flip moves input and target alike
        clean = to_float(moved)  # (B, C, H, W) on [0, 1]: the target
        return transform.to_input(self.corrupt(clean, generator), generator, train), clean

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.mse_loss(output.float(), y)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return float(measures.psnr(output, y).sum())

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        if transform is None:
            raise ValueError(f"--task {self.name} evaluates images, not precomputed inputs: give a BatchTransform")
        squared, psnr = 0.0, 0.0
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            squared += float(measures.mse(output, y).sum())
            psnr += float(measures.psnr(output, y).sum())
        return {"loss": squared / len(images), "psnr": psnr / len(images)}

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        return tuple(input_shape)

    def scores(self, model: nn.Module, images: torch.Tensor, transform: BatchTransform, runtime: Runtime, split: str,
               seed: int = 0) -> tuple[ReconstructionResult, dict[str, torch.Tensor]]:
        """MSE, PSNR and SSIM of ``model``'s outputs against the clean images (and of the network's inputs, when
        they are corrupted), and the first :data:`SHOWN` inputs, outputs and clean images on [0, 1] for figures."""
        sums = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0, "mse_noisy": 0.0, "psnr_noisy": 0.0, "ssim_noisy": 0.0}
        examples: dict[str, list[torch.Tensor]] = {"input": [], "output": [], "clean": []}
        labels = torch.zeros(len(images), dtype=torch.long, device=images.device)  # unused by prepare
        for x, y, output in self.predict(model, images, labels, transform, runtime, seed):
            output = output.clamp(0.0, 1.0)  # a table without a final sigmoid may overshoot; PSNR is on [0, 1]
            for prefix, value in (("", output), ("_noisy", x)):
                sums[f"mse{prefix}"] += float(measures.mse(value, y).sum())
                sums[f"psnr{prefix}"] += float(measures.psnr(value, y).sum())
                sums[f"ssim{prefix}"] += float(measures.ssim(value, y).sum())
            missing = SHOWN - sum(len(t) for t in examples["input"])
            if missing > 0:
                for key, value in (("input", x), ("output", output), ("clean", y)):
                    examples[key].append(value[:missing].float().cpu())
        count = len(images)
        mean = {key: round(value / count, 4) for key, value in sums.items()}
        result = ReconstructionResult(self.name, split, count, round(sums["mse"] / count, 6), mean["psnr"],
                                      mean["ssim"])
        self.add_input_scores(result, sums, count)
        return result, {key: torch.cat(value) for key, value in examples.items()}

    def add_input_scores(self, result: ReconstructionResult, sums: dict[str, float], count: int) -> None:
        """What the scores of the network's own input add to the result (denoise: the noisy baseline)."""

    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> ReconstructionResult:
        result, shown = self.scores(model, data.images.to(runtime.device), transform, runtime, context.split,
                                    context.seed)
        if context.folder is not None:
            name = self.figure(result, shown, context.folder / f"{self.figure_name}.png", context.title)
            result.files[self.figure_name] = str(name)
        return result

    def figure(self, result: ReconstructionResult, shown: dict[str, torch.Tensor], path: Path, title: str) -> Path:
        """The figure of ``cnnkit evaluate``: the originals over their reconstructions, each with its PSNR."""
        psnr = [f"{v:.1f} dB" for v in measures.psnr(shown["output"], shown["clean"])]
        rows = [("original", shown["clean"]), ("reconstruction", shown["output"])]
        image_grid_figure(rows, path, f"{title}): PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.3f}",
                          {"reconstruction": psnr})
        return path

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> ImageOutput:
        """``NAME.reconstructed.png`` (denoise: ``NAME.denoised.png``) at the network's input size."""
        path = target.with_name(f"{target.name}.{self.output_word}.png")
        write_tensor_png(path, output.clamp(0, 1).mul(255).round().to(torch.uint8))
        return ImageOutput(file, {self.output_word: str(path)})
