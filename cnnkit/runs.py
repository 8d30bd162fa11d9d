"""A run directory, typed: the one module that reads and writes what ``cnnkit train`` and ``cnnkit transfer`` leave.

Layout::

    RUN/config.json         the TrainConfig (or TransferConfig) the run was made with
    RUN/model.json          the model card (:class:`ModelCard`): task, network source, input, classes, data
    RUN/model.safetensors   the weights (safetensors: no pickle)
    RUN/metrics.jsonl       one JSON line per completed epoch
    RUN/metrics.json        ``cnnkit evaluate``'s result
    RUN/summary.txt         the per-layer summary
    RUN/checkpoint/state.pt model, optimizer, schedule, RNG, epoch and batch (read with weights_only=True)

Everything that reads a run (evaluate, predict, the report, visualize,
export, transfer from a run, resume) opens it with :meth:`Run.open` and asks
it: :meth:`Run.network` for the trained network, :meth:`Run.held_out` for the
split it was evaluated on (with the classes it was trained on),
:meth:`Run.input_from_file` for an image file exactly as its training data
was read. Every file is written atomically (:mod:`cnnkit.fileio`).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnkit.data.spec import DataSpec
from cnnkit.fileio import atomic_write, read_json, write_json
from cnnkit.images import ImagePrep, input_from_file

if TYPE_CHECKING:
    from cnnkit.data import BatchTransform, ImageDataset
    from cnnkit.tasks import Task

CARD = "model.json"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
HISTORY = "metrics.jsonl"
METRICS = "metrics.json"
SUMMARY = "summary.txt"
CHECKPOINT = Path("checkpoint") / "state.pt"


@dataclass(frozen=True)
class ModelCard:
    """What a run's network is and how it reads images: ``model.json``.

    ``image`` says how a file is fitted to the input (runs written before it
    was recorded read their ``folder:`` data centre-cropped, the default here).
    ``data`` is the :class:`~cnnkit.data.spec.DataSpec` the run trained on.
    """

    task: str  # the --task word (cnnkit.tasks)
    source: dict[str, Any]  # how to rebuild the network (cnnkit.network.build)
    input_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]
    transform: dict[str, Any]  # evaluation's BatchTransform (its mean and std normalise inputs)
    data: DataSpec | None = None
    noise: str | None = None  # denoise: the corruption
    image: dict[str, Any] = field(default_factory=lambda: {"fit": "crop", "interpolation": "bilinear"})
    eval_split: str = ""  # "val" or "test"; "" when the data has neither
    skipped_files: tuple[str, ...] = ()  # --skip-bad-images: what training left out

    def as_dict(self) -> dict[str, Any]:
        mean, std = self.transform.get("mean"), self.transform.get("std")
        return {"task": self.task, "noise": self.noise, "source": self.source, "input_shape": list(self.input_shape),
                "class_names": list(self.class_names), "mean": mean, "std": std, "transform": self.transform,
                "image": self.image, "data": None if self.data is None else self.data.as_dict(),
                "eval_split": self.eval_split, "skipped_files": list(self.skipped_files)}

    @classmethod
    def from_dict(cls, values: Any, path: Path, config: dict[str, Any] | None = None) -> ModelCard:
        """From ``model.json``'s contents; ``config`` (``config.json``) supplies the data of older runs."""
        if not isinstance(values, dict):
            raise ValueError(f"{path}: not a model card (a JSON object); the run directory is damaged or not cnnkit's")
        for key in ("source", "input_shape", "class_names", "transform"):
            if key not in values:
                raise ValueError(f"{path}: no {key!r}; the run directory is damaged or not cnnkit's")
        shape = tuple(int(s) for s in values["input_shape"])
        if len(shape) != 3:
            raise ValueError(f"{path}: input_shape must be (C, H, W). Received: {values['input_shape']}")
        data = values.get("data")
        spec = (DataSpec.from_dict(data) if isinstance(data, dict)
                else DataSpec.from_dict(config) if config and isinstance(config.get("data"), str) else None)
        image = {"fit": "crop", "interpolation": "bilinear", **(values.get("image") or {})}
        return cls(str(values.get("task", "classify")), dict(values["source"]), (shape[0], shape[1], shape[2]),
                   tuple(str(n) for n in values["class_names"]), dict(values["transform"]), spec,
                   values.get("noise"), image, str(values.get("eval_split") or ""),
                   tuple(values.get("skipped_files") or ()))

    def make_task(self) -> Task:
        """The run's task, with its options (denoise's noise)."""
        from cnnkit.tasks import make_task

        return make_task(self.task, self.noise)

    def batch_transform(self) -> BatchTransform:
        """Evaluation's transform of uint8 batches: to [0, 1], normalised as in training."""
        from cnnkit.data import BatchTransform

        return BatchTransform.from_dict(self.transform)

    def prep(self) -> ImagePrep:
        """How an image file becomes this network's input: the same fit, resampling and normalisation as training."""
        mean, std = self.transform.get("mean"), self.transform.get("std")
        return ImagePrep(self.input_shape, self.image["fit"], self.image["interpolation"],
                         None if mean is None else tuple(mean), None if std is None else tuple(std))

    @property
    def name(self) -> str:
        """The network's name, e.g. ``lenet5`` or a layer table's file stem."""
        return str(self.source.get("name", "network"))


class Run:
    """One run directory: its model card, and everything else read through it."""

    def __init__(self, folder: Path, card: ModelCard) -> None:
        self.folder = folder
        self.card = card

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}, task={self.card.task!r}, network={self.card.name!r})"

    # ---- opening and creating ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path) -> Run:
        """The run in ``folder``; a folder that is not one is an error saying so."""
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a run directory (no such folder); train one with `cnnkit train`")
        if not (path / CARD).is_file():
            raise FileNotFoundError(f"{path}: not a run directory of `cnnkit train` (no {CARD})")
        config = read_json(path / CONFIG) if (path / CONFIG).is_file() else None
        return cls(path, ModelCard.from_dict(read_json(path / CARD), path / CARD, config))

    @classmethod
    @contextmanager
    def create(cls, folder: Path, card: ModelCard, config: dict[str, Any], *, resumable: bool = True) -> Iterator[Run]:
        """A new run in ``folder`` (made if missing; refused if it holds files), with its card and config written.

        If the block raises before the run's first checkpoint, what it wrote is
        removed again (the folder too, if this made it): a failed start leaves
        nothing behind. A run that cannot be resumed (``resumable=False``:
        ``cnnkit transfer``) is removed whenever it fails.
        """
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"--out {folder}: the directory exists and is not empty; choose another, or continue "
                             f"a training run with `cnnkit train --resume {folder}`")
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        run = cls(folder, card)
        try:
            write_json(folder / CONFIG, config)
            write_json(folder / CARD, card.as_dict())
            yield run
        except BaseException:
            if not resumable or not (folder / CHECKPOINT).exists():
                if created:
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    for path in folder.iterdir():
                        if path.is_file():
                            path.unlink()
            raise

    @staticmethod
    def is_run(folder: str | Path) -> bool:
        """Whether ``folder`` is a run directory (holds a model card)."""
        return (Path(folder) / CARD).is_file()

    # ---- reading ----------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """``config.json``: the options the run was made with."""
        values = read_json(self.folder / CONFIG)
        if not isinstance(values, dict):
            raise ValueError(f"{self.folder / CONFIG}: not a JSON object; the run directory is damaged")
        return values

    def network(self) -> nn.Module:
        """The trained network, in eval mode (weights from ``model.safetensors``, no pickle)."""
        from cnnkit.network import build

        model = build(self.card.source, self.card.input_shape)
        load_weights(self.folder / WEIGHTS, model)
        return model.eval()

    def fresh_network(self) -> nn.Module:
        """The run's network with new, untrained weights (what resume restores a checkpoint into)."""
        from cnnkit.network import build

        return build(self.card.source, self.card.input_shape)

    def data(self) -> DataSpec:
        """The data the run trained on; runs made outside cnnkit's training have none recorded."""
        if self.card.data is None:
            raise ValueError(f"{self.folder}: the run does not record its data; give --data")
        return self.card.data

    def held_out(self, data: str | None = None, data_dir: str | None = None) -> tuple[ImageDataset, str]:
        """The run's evaluation split (val, else test) with its classes, or the whole test split of ``data``.

        Either way the images must have the run's input shape, and (for tasks
        that predict classes) the run's classes; a mismatch is a ValueError naming both.
        """
        if data is None:
            spec = self.data()
        elif self.card.data is not None:
            spec = self.card.data.other(data, data_dir)
        else:
            spec = DataSpec(data, data_dir)
        held_out, split = spec.held_out()
        same_classes = (list(held_out.class_names) == list(self.card.class_names)
                        or not self.card.make_task().needs_classes)
        if not same_classes or tuple(held_out.images.shape[1:]) != self.card.input_shape:
            raise ValueError(f"--data {spec.name}: its classes {list(held_out.class_names)[:4]}... and image shape "
                             f"{list(held_out.images.shape[1:])} differ from the run's {list(self.card.class_names)[:4]}"
                             f"... and {list(self.card.input_shape)}")
        return held_out, split

    def input_from_file(self, path: str | Path) -> torch.Tensor:
        """An image file as this network's input ``(C, H, W)``: read exactly as the run's training data was."""
        return input_from_file(path, self.card.prep())

    def metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` (``cnnkit evaluate``'s result), or None before the run is evaluated."""
        path = self.folder / METRICS
        return read_json(path) if path.is_file() else None

    # ---- writing ----------------------------------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> Path:
        """A text file in the run directory (``summary.txt``, ``report.html``), atomically."""
        atomic_write(self.folder / name, text.encode())
        return self.folder / name

    def write_metrics(self, result: dict[str, Any]) -> Path:
        write_json(self.folder / METRICS, result)
        return self.folder / METRICS

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """``metrics.jsonl`` from the history: rewritten whole, so it always matches the checkpoint."""
        atomic_write(self.folder / HISTORY, "".join(json.dumps(record) + "\n" for record in history).encode())

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.folder / CONFIG, config)

    def save_weights(self, model: nn.Module) -> None:
        save_weights(self.folder / WEIGHTS, model)

    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(self.folder / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's contents, unpickled with ``weights_only=True`` (tensors and plain values only)."""
        path = self.folder / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint; is {self.folder} a cnnkit run directory that finished an "
                                    f"epoch?")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged or foreign file: torch raises several types here
            raise ValueError(f"{path}: not a cnnkit checkpoint ({type(error).__name__}: {error})") from None
        if not isinstance(payload, dict) or "model" not in payload:
            raise ValueError(f"{path}: not a cnnkit checkpoint (no model state)")
        return payload

    def restore(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's model state into ``model``; another network's is an error naming the keys."""
        load_state(model, state, self.folder / CHECKPOINT)


def save_weights(path: Path, model: nn.Module) -> None:
    """``model``'s state as a safetensors file, atomically."""
    from safetensors.torch import save as save_safetensors

    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    atomic_write(path, save_safetensors(state))


def load_weights(path: Path, model: nn.Module) -> None:
    """Load safetensors weights into ``model``; a file for another network is a ``ValueError`` naming the keys."""
    from safetensors.torch import load as load_safetensors

    try:
        state = load_safetensors(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such weight file") from None
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None
    load_state(model, state, path)


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``model.load_state_dict(state)``, but a state of another network names what differs and ``path``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        details = "; ".join(part for part in (
            f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}" if unexpected else "",
            f"different shapes {', '.join(mismatched[:3])}" if mismatched else "") if part)
        raise ValueError(f"{path}: the weights belong to another network ({details})")
    model.load_state_dict(state)
