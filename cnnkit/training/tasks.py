"""What a network learns: one small class per training task, which ``fit`` and ``evaluate`` call.

A task says what the targets are, how a batch's input and target are made from
its uint8 images, the loss, the running training metric and the held-out metrics::

    task         input -> target                              loss                   metrics
    classify     image -> class (N,)                          cross-entropy          accuracy
    segment      image -> class per pixel (N, H, W)           cross-entropy + Dice   pixel accuracy, mean IoU
    reconstruct  image -> the same image on [0, 1]            mean squared error     PSNR
    denoise      corrupted image -> the clean image on [0, 1] mean squared error     PSNR

Reconstruction and denoising feed the network pixels on [0, 1], not normalised
ones, so that its input and its target share one scale (the autoencoders end in
a sigmoid) and "give back the input" is a meaningful baseline. Denoising draws
its corruption from the batch's seeded generator, so a resumed run sees the
same noise, and evaluation draws it from a generator seeded by the run's seed,
so every evaluation of a run corrupts the held-out images alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset, batches, to_float
from cnnkit.data.noise import Noise
from cnnkit.training import measures
from cnnkit.training.hardware import Runtime

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (input x, target y, output) of one evaluation batch
# the most memory a training set's inputs may take when prepared once in float32 (Task.prepare_once)
PREPARE_ONCE_BYTES = 1 << 30


def layout(x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if runtime.channels_last else x


def evaluate_batches(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, transform: BatchTransform,
                     runtime: Runtime, batch_size: int = 512, tta: bool = False) -> tuple[float, float, torch.Tensor]:
    """Mean cross-entropy, accuracy and the ``(N, classes)`` float32 logits of ``model`` on uint8 ``images``.

    ``tta`` (test-time augmentation) averages the logits of each image and of its mirror image.
    """
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad(), runtime.autocast():
        for x, _ in batches((images, labels), batch_size):
            x = layout(transform(x, train=False), runtime)
            logits = model(x).float()
            outputs.append(0.5 * (logits + model(x.flip(-1)).float()) if tta else logits)
    model.train(was_training)
    logits = torch.cat(outputs)
    loss = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return loss, accuracy, logits


def evaluation_generator(seed: int, device: torch.device) -> torch.Generator:
    """The generator of a run's evaluation draws (denoising noise): one stream per run seed, apart from training's."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + 999_999_937) % 2**63)


class Task:
    """Classification, the base of the others: images in, one class per image out."""

    name: ClassVar[str] = "classify"
    metric: ClassVar[str] = "accuracy"  # the running training metric, "train_<metric>" in metrics.jsonl
    normalises: ClassVar[bool] = True  # whether the network's input is normalised by the training set's statistics
    per_image: ClassVar[bool] = True  # every held-out score is a mean over images (so shards' scores can be pooled)

    def __init__(self, tta: bool = False) -> None:
        self.tta = tta  # classify: evaluate each image and its mirror image, average the logits

    def __str__(self) -> str:
        return self.name

    def targets(self, data: ImageDataset) -> torch.Tensor:
        """What the batches carry beside the images: ``(N,)`` labels, or ``(N, H, W)`` class maps."""
        return data.labels

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's network input ``x`` (float ``(B, C, H, W)``) and target ``y``, augmented when ``train``."""
        return transform(images, generator, train=train), targets

    def draws(self, transform: BatchTransform) -> bool:
        """Whether a training batch makes random draws (and so needs its seeded generator)."""
        return transform.augments

    def prepare_once(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                     runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The whole training set's network inputs, made once, when nothing random changes them; else None.

        What a hand-written loop does with data that fits in memory: normalise once,
        then only gather batches. ``(N, C, H, W)`` uint8 -> float32 in the run's
        memory format; None when the batches are augmented, when the task derives
        its target from the image, or when the float copy would pass
        :data:`PREPARE_ONCE_BYTES`. The result equals ``prepare`` batch by batch.
        """
        if type(self).prepare is not Task.prepare or self.draws(transform) or images.numel() * 4 > PREPARE_ONCE_BYTES:
            return None
        memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
        x = torch.empty(images.shape, dtype=torch.float32, device=images.device, memory_format=memory_format)
        for start in range(0, len(images), 4096):  # a chunk at a time: no second full-size temporary
            x[start : start + 4096] = transform(images[start : start + 4096], None)
        return x, targets

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(output.float(), y, label_smoothing=label_smoothing)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        """The training metric summed over the batch's images (here: how many are classified right)."""
        return int((output.argmax(1) == y).sum())

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        """``{"loss": ..., <metric>: ...}`` of ``model`` on held-out uint8 ``images``."""
        loss, accuracy, _ = evaluate_batches(model, images, targets, transform, runtime, tta=self.tta)
        return {"loss": loss, "accuracy": accuracy}

    def predict(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                runtime: Runtime, seed: int = 0, batch_size: int = 256) -> Iterator[Batch]:
        """``(x, y, output)`` per batch in order, the model in eval mode, without gradients, outputs in float32."""
        generator = evaluation_generator(seed, images.device)
        was_training = model.training
        model.eval()
        try:
            for chunk, target in batches((images, targets), batch_size):
                x, y = self.prepare(chunk, target, transform, generator, train=False)
                with torch.no_grad(), runtime.autocast():
                    output = model(layout(x, runtime)).float()
                yield x, y, output
        finally:
            model.train(was_training)


class Segment(Task):
    """Semantic segmentation: a class for every pixel; masks move with their images under crops and flips."""

    name = "segment"
    metric = "pixel_accuracy"
    per_image = False  # mean IoU pools the pixel confusion matrix of the whole split

    def targets(self, data: ImageDataset) -> torch.Tensor:
        if data.segmentation is None:
            raise ValueError(f"--task segment needs a dataset with a class per pixel (shapes-seg, or folder:PATH with "
                             f"images/ and masks/); {data.name} has only a label per image")
        return data.segmentation

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x, masks = transform.apply(images, targets, generator, train)
        assert masks is not None  # apply returns the masks it was given
        return x, masks.long()  # (B, C, H, W) float, (B, H, W) int64

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        logits = output.float()  # (B, K, H, W)
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing) + measures.dice_loss(logits, y)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return float((output.argmax(1) == y).float().mean((1, 2)).sum())  # each image's pixel accuracy, summed

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        total, matrix = 0.0, np.zeros((0, 0), dtype=np.int64)
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            counts = measures.confusion(output.argmax(1), y, output.shape[1])
            matrix = counts if matrix.size == 0 else matrix + counts
        scores = measures.segmentation_scores(matrix)
        return {"loss": total / len(images), "pixel_accuracy": scores.pixel_accuracy, "mean_iou": scores.mean_iou}


class Reconstruct(Task):
    """An autoencoder's job: give back the image itself, through the bottleneck."""

    name = "reconstruct"
    metric = "psnr"
    normalises = False

    def corrupt(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The network's input made from the clean ``(B, C, H, W)`` [0, 1] image (here: the image itself)."""
        return clean

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        moved, _ = transform.geometric(images, None, generator, train)  # a crop or flip moves input and target alike
        clean = to_float(moved)  # (B, C, H, W) on [0, 1]: the target
        return transform.to_input(self.corrupt(clean, generator), generator, train), clean

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.mse_loss(output.float(), y)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return float(measures.psnr(output, y).sum())

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        squared, psnr = 0.0, 0.0
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            squared += float(measures.mse(output, y).sum())
            psnr += float(measures.psnr(output, y).sum())
        return {"loss": squared / len(images), "psnr": psnr / len(images)}


class Denoise(Reconstruct):
    """A denoising autoencoder's job: from the image corrupted by ``noise``, give back the clean one."""

    name = "denoise"

    def __init__(self, noise: Noise) -> None:
        super().__init__()
        self.noise = noise

    def draws(self, transform: BatchTransform) -> bool:
        return True  # the corruption

    def __str__(self) -> str:
        return f"denoise {self.noise}"

    def corrupt(self, clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return self.noise(clean, generator)


def make_task(name: str, noise: str | None = None, tta: bool = False) -> Task:
    """The task called ``name`` (a :class:`~cnnkit.training.config.TrainConfig` ``task``).

    ``noise`` is denoise's corruption; ``tta`` (classify only) evaluates each image and its mirror image.
    """
    if tta and name != "classify":
        raise ValueError(f"--tta applies to --task classify only. Received: --task {name}")
    if name == "denoise":
        if noise is None:
            raise ValueError("--task denoise needs --noise, e.g. gaussian:0.3")
        return Denoise(Noise.parse(noise))
    tasks: dict[str, type[Task]] = {"classify": Task, "segment": Segment, "reconstruct": Reconstruct}
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; choose from classify, segment, reconstruct, denoise")
    return Task(tta=tta) if name == "classify" else tasks[name]()
