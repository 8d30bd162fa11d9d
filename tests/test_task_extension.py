"""A new task is one module: the rotation task of docs/tasks.md, registered, then trained, evaluated and used to
predict by the ordinary commands, none of which was changed for it.

The task is self-supervised rotation prediction (Gidaris et al., 2018, "RotNet"):
every image is turned by 0, 90, 180 or 270 degrees and the network says which.
It needs no labels, and a network that can tell "upright" has learnt the shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cnnkit import tasks
from cnnkit.data import BatchTransform, ImageDataset
from cnnkit.images import ImagePrep
from cnnkit.runtime import Runtime
from cnnkit.tasks import EvalContext, Task
from cnnkit.tasks.base import Shape
from cnnkit.tasks.outputs import ImageOutput

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")

ANGLES = (0, 90, 180, 270)


@dataclass
class RotationResult:
    """``cnnkit evaluate``'s result: ``as_dict()`` is ``metrics.json``."""

    split: str
    count: int
    accuracy: float  # of the predicted rotation
    per_angle: list[float]
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"task": "rotate", "split": self.split, "count": self.count, "accuracy": self.accuracy,
                "per_angle": dict(zip(map(str, ANGLES), self.per_angle, strict=True)), "files": self.files}


class Rotate(Task):
    """Which way is up: an image turned by k * 90 degrees in, k out."""

    name = "rotate"
    metric = "accuracy"
    zoo_kind = "classification"
    table_hint = "; make its last dense layer `dense 4` (one score per rotation)"
    output_words = "a score per rotation (0, 90, 180, 270 degrees)"
    needs_classes = False  # the data's own classes are not the targets

    def targets(self, data: ImageDataset) -> torch.Tensor:
        if data.images.shape[-1] != data.images.shape[-2]:
            raise ValueError(f"--task rotate needs square images; {data.name} has {tuple(data.images.shape[-2:])}")
        return data.labels  # carried along, unused: the target is made in prepare

    def draws(self, transform: BatchTransform) -> bool:
        return True  # the rotations

    def prepare(self, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform,
                generator: torch.Generator | None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        where = generator.device if generator is not None else images.device
        turns = torch.randint(0, 4, (len(images),), generator=generator, device=where).to(images.device)
        turned = torch.stack([torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(images, turns, strict=True)])
        return transform(turned, generator, train=train), turns

    def loss(self, output: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(output.float(), y, label_smoothing=label_smoothing)

    def score(self, output: torch.Tensor, y: torch.Tensor) -> float:
        return int((output.argmax(1) == y).sum())

    def evaluate(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor, transform: BatchTransform | None,
                 runtime: Runtime, seed: int = 0) -> dict[str, float]:
        assert transform is not None
        total, right = 0.0, 0
        for _, y, output in self.predict(model, images, targets, transform, runtime, seed):
            total += float(self.loss(output, y)) * len(y)
            right += self.score(output, y)
        return {"loss": total / len(images), "accuracy": right / len(images)}

    def output_shape(self, input_shape: Shape, num_classes: int) -> Shape:
        return (len(ANGLES),)

    def evaluate_split(self, model: nn.Module, data: ImageDataset, transform: BatchTransform, runtime: Runtime,
                       context: EvalContext) -> RotationResult:
        right, seen = torch.zeros(4), torch.zeros(4)
        for _, y, output in self.predict(model, data.images, data.labels, transform, runtime, context.seed):
            for k in range(4):
                seen[k] += int((y == k).sum())
                right[k] += int(((output.argmax(1) == y) & (y == k)).sum())
        per_angle = (right / seen.clamp(min=1)).tolist()
        return RotationResult(context.split, len(data), float(right.sum() / seen.sum()), per_angle)

    def write_outputs(self, file: str, x: torch.Tensor, output: torch.Tensor, prep: ImagePrep,
                      class_names: Sequence[str], target: Path) -> ImageOutput:
        probs = output.softmax(0)
        ranked = tuple((int(k), f"{ANGLES[int(k)]} degrees", float(probs[k])) for k in probs.argsort(descending=True))
        return ImageOutput(file, {}, ranked)


TABLE = """\
input 1x8x8
conv 16 3x3 padding=same
relu
conv 32 3x3 padding=same
relu
maxpool 2
flatten
dense 64
relu
dense 4
"""


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tasks.TASKS, "rotate", Rotate)


def test_a_task_module_trains_evaluates_and_predicts_through_the_ordinary_commands(
        registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.cli import main
    from cnnkit.data import load
    from cnnkit.evaluation import evaluate
    from cnnkit.inference import predict_run

    (tmp_path / "net.txt").write_text(TABLE)
    out = tmp_path / "run"
    assert main(["train", "--task", "rotate", "--model", str(tmp_path / "net.txt"), "--data", "digits", "--epochs",
                 "6", "--batch-size", "32", "--precision", "fp32", "--out", str(out), "--no-report", "--json"]) == 0
    capsys.readouterr()
    result = evaluate(out, figures=False)
    assert isinstance(result, RotationResult) and result.count == 359
    assert result.accuracy > 0.8, result  # chance is 0.25; measured: about 0.9 after 6 epochs
    # a test digit turned by 90 degrees, as a file: predict's scores are the network's on that very input
    from cnnkit.runs import Run

    test = load("digits").test
    assert test is not None
    turned = torch.rot90(test.images[0], 1, dims=(1, 2))  # (1, 8, 8) uint8
    Image.fromarray(turned[0].numpy()).save(tmp_path / "turned.png")
    run = Run.open(out)
    with torch.no_grad():
        probs = run.network()(run.card.batch_transform()(turned[None], train=False)).softmax(1)[0]
    (predicted,) = predict_run(out, [tmp_path / "turned.png"])
    assert isinstance(predicted, ImageOutput) and predicted.outputs == {}
    assert [k for k, _, _ in predicted.classes] == probs.argsort(descending=True).tolist()
    assert predicted.classes[0][2] == pytest.approx(float(probs.max()), abs=1e-6)
    # a zoo network of the wrong kind, or a table with the wrong head, is refused in the task's words
    (tmp_path / "wrong.txt").write_text(TABLE.replace("dense 4", "dense 10"))
    assert main(["train", "--task", "rotate", "--model", str(tmp_path / "wrong.txt"), "--data", "digits",
                 "--out", str(tmp_path / "wrong")]) == 2
    assert "make its last dense layer `dense 4`" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()
