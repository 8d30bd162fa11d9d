"""The task protocol: everything that differs between what networks are trained to do, in one class per task.

A task says what the targets are, how a batch's input and target are made
from its uint8 images, the loss, the running training metric, the held-out
scores of every epoch, ``cnnkit evaluate``'s metrics and figures, what
``cnnkit predict`` makes of an image file, and how the run is named in the
log. ``fit``, ``evaluate``, ``predict``, the report and transfer call the
task; none of them asks which task it is. A new task is a subclass of
:class:`Task` in its own module, registered in :mod:`cnnkit.tasks`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from cnnkit.data import BatchTransform, ImageDataset, batches
from cnnkit.images import ImagePrep, input_from_file
from cnnkit.runtime import Runtime
from cnnkit.tasks.outputs import ImageOutput

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (input x, target y, output) of one evaluation batch
Shape = tuple[int, ...]
# the most memory a training set's inputs may take when prepared once in float32 (Task.prepare_once)
PREPARE_ONCE_BYTES = 1 << 30
SHOWN = 8  # images in each example figure of `cnnkit evaluate`


class Result(Protocol):
    """What ``cnnkit evaluate`` returns for a task: ``as_dict()`` is ``metrics.json``; ``files`` its figures."""

    files: dict[str, str]

    def as_dict(self) -> dict[str, Any]: ...


class Prediction(Protocol):
    """What ``cnnkit predict`` made of one image file, or why it could not (``error``)."""

    @property
    def file(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EvalContext:
    """Where ``cnnkit evaluate`` is, for a task's metrics and figures."""

    class_names: list[str]
    split: str  # "test" or "val"
    seed: int  # the run's seed: evaluation's own random draws (denoising noise) follow it
    folder: Path | None  # where the figures go; None: no figures
    title: str  # e.g. "lenet5 on fashion-mnist (test"; a figure closes the bracket with its score


def layout(x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """A batch of images ``(B, C, H, W)`` in the run's memory format; other inputs (features ``(B, F)``) as they are."""
    return x.contiguous(memory_format=torch.channels_last) if runtime.channels_last and x.dim() == 4 else x


def evaluation_generator(seed: int, device: torch.device) -> torch.Generator:
    """The generator of a run's evaluation draws (denoising noise): one stream per run seed, apart from training's."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + 999_999_937) % 2**63)


def spread(count: int, shown: int) -> list[int]:
    """``shown`` indices spread evenly over ``0 .. count - 1`` (all of them when there are fewer).

    >>> spread(10, 4)
    [0, 3, 6, 9]
    """
    if count <= shown:
        return list(range(count))
    return [round(i * (count - 1) / (shown - 1)) for i in range(shown)]


class Task:
    """What a network learns. Subclasses set the class variables and implement the methods that raise here."""

    name: ClassVar[str]  # the --task word
    metric: ClassVar[str]  # the running training metric, "train_<metric>" in metrics.jsonl
    zoo_kind: ClassVar[str]  # the kind of zoo network this task trains (cnnkit.models.KINDS)
    defaults: ClassVar[dict[str, Any]] = {}  # TrainConfig options this task changes when they are not given
    options: ClassVar[tuple[str, ...]] = ()  # the task's own options: "noise", "tta"
    zoo_kwargs: ClassVar[dict[str, Any]] = {}  # arguments a zoo network gets for this task, where it takes them
    table_hint: ClassVar[str] = ""  # how a layer table must end for this task ({n}: the number of classes)
    output_words: ClassVar[str] = ""  # what the network outputs, for exported files' metadata
    # figures of `cnnkit evaluate` that the report gives a section of their own: (files key, anchor, title)
    report_sections: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    needs_classes: ClassVar[bool] = True  # the targets are classes: held-out data must have the run's classes
    smooths_labels: ClassVar[bool] = True  # the loss is a cross-entropy that --label-smoothing applies to
    normalises: ClassVar[bool] = True  # whether the network's input is normalised by the training set's statistics
    per_image: ClassVar[bool] = True  # every held-out score is a mean over images (so shards' scores can be pooled)

    def __init__(self, *, noise: str | None = None, tta: bool = False) -> None:
        given = {"noise": noise is not None, "tta": tta}
        for option, present in given.items():
            if present and option not in self.options:
                raise ValueError(f"--{option} does not apply to --task {self.name}. Received: --{option}"
                                 + (f" {noise}" if option == "noise" else ""))
        self.tta = tta

    def __str__(self) -> str:
        return self.name

    # ---- training -------------------------------------------------------------------------------------------
    def targets(self, data: ImageDataset) -> torch.Tensor:
        """What the batches carry beside the images: ``(N,)`` labels, ``(N, H, W)`` class maps, or the images."""
        raise NotImplementedError

    def check(self, data: ImageDataset) -> None:
        """A ValueError, before a run exists, when ``data`` lacks what this task learns (by default: making its
        targets; a task whose targets are costly to make checks without making them)."""
        self.targets(data)

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
        raise NotImplementedError

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        """The training metric summed over the batch's images."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        """``{"loss": ..., <metric>: ...}`` of ``model`` on held-out uint8 ``images``: every epoch's scores.

        ``transform=None``: the images are network inputs already (see :func:`cnnkit.training.fit`)."""
        raise NotImplementedError

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

    # ---- the network ----------------------------------------------------------------------------------------
    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        """What the network must output per image for this task."""
        raise NotImplementedError

    def zoo_classes(self, num_classes: int) -> int:
        """The ``num_classes`` a zoo network gets for data of ``num_classes`` classes (localize: 4 more, the box)."""
        return num_classes

    def describe(self, num_classes: int) -> str:
        """The run in the training log's words, e.g. ``10 classes``."""
        return f"task {self}"

    # ---- cnnkit evaluate and cnnkit predict -----------------------------------------------------------------
    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> Result:
        """``cnnkit evaluate``: the metrics of ``model`` on the held-out ``data``, and (``context.folder``) figures."""
        raise NotImplementedError

    def predict_files(self, model: nn.Module, prep: ImagePrep, files: Sequence[str | Path], class_names: Sequence[str],
                      *, top: int = 5, out: Path | None = None) -> list[Prediction]:
        """``cnnkit predict``: each file through ``model``, read as ``prep`` says; the task's outputs written as
        PNG files into ``out`` (default: beside each image). Unreadable files get a result with ``error``."""
        results: list[Prediction] = []
        model.eval()
        for file in files:
            try:
                x = input_from_file(file, prep)[None]  # (1, C, H, W)
            except OSError as error:
                results.append(ImageOutput(str(file), error=str(error)))
                continue
            with torch.inference_mode():
                output = model(x)[0].float()
            target = (out or Path(file).parent) / Path(file).stem
            results.append(self.write_outputs(str(file), x[0], output, prep, class_names, target))
        return results

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> Prediction:
        """What the network made of one image (``x`` its input, ``output`` its output) as files named ``target.*``."""
        raise NotImplementedError
