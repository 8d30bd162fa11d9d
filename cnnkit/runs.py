"""A run directory, typed: the one module that reads and writes what ``cnnkit train`` and ``cnnkit transfer`` leave.

Layout::

    RUN/config.json         the TrainConfig (or TransferConfig) the run was made with
    RUN/model.json          the model card (:class:`ModelCard`): task, network source, input, classes, data
    RUN/model.safetensors   the weights (safetensors: no pickle)
    RUN/metrics.jsonl       one JSON line per completed epoch
    RUN/metrics.json        ``cnnkit evaluate``'s result
    RUN/summary.txt         the per-layer summary
    RUN/heldout.safetensors the held-out split, when the data was given from Python (arrays, a Dataset)
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
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnkit.cardcheck import Fields, check_source
from cnnkit.data.spec import DataSpec
from cnnkit.fileio import atomic_write, check_regular, inside, json_text, read_json, write_json
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
GIVEN_DATA = "memory"  # config.json's `data` for data given from Python (cnnkit.training.given)
HELD_OUT = "heldout.safetensors"  # the held-out split of data given from Python (no name to load it again by)
TIMINGS = "timings.json"  # where a command's time went (cnnkit.timing)
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
        """From ``model.json``'s contents, every field checked (:mod:`cnnkit.cardcheck`); ``config``
        (``config.json``) supplies the data of older runs. A bad field is a ValueError naming ``path`` and it."""
        from cnnkit import tasks

        fields = Fields(values, path, "")
        task = fields.choice("task", tasks.names(), default="classify")
        source = check_source(fields.obj("source"))
        shape = fields.shape("input_shape")
        names = fields.names("class_names")
        transform = fields.obj("transform").values
        for copy in ("mean", "std"):  # written beside the transform for readers; an edit of one is not silently lost
            if values.get(copy) is not None and values.get(copy) != transform.get(copy):
                raise ValueError(f"{path}: `{copy}` {values[copy]!r} differs from `transform.{copy}` "
                                 f"{transform.get(copy)!r}, which normalises the inputs; the file was edited: make "
                                 f"them equal")
        noise = fields.text("noise", limit=100) if fields.has("noise") else None
        image = {"fit": "crop", "interpolation": "bilinear"}
        if fields.has("image"):
            record = fields.obj("image")
            image = {"fit": record.choice("fit", ("crop", "stretch"), "crop"),
                     "interpolation": record.choice("interpolation", ("bilinear", "bicubic"), "bilinear")}
        eval_split = str(fields.choice("eval_split", ("", "val", "test"), default="") if fields.has("eval_split")
                         else "")
        skipped = fields.names("skipped_files", limit=1 << 20, length=4096) if fields.has("skipped_files") else ()
        try:
            data = values.get("data")
            spec = (DataSpec.from_dict(data) if isinstance(data, dict)
                    else DataSpec.from_dict(config) if config and isinstance(config.get("data"), str)
                    and config["data"] != GIVEN_DATA else None)
            card = cls(task, source, shape, names, dict(transform), spec, noise, image, eval_split, skipped)
            card.make_task()  # the task's options (denoise's noise)
            card.prep()  # normalisation that fits the channels
            card.batch_transform()
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from None
        return card

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
        for name, values in (("mean", mean), ("std", std)):
            if values is not None and (not isinstance(values, list | tuple) or len(values) != self.input_shape[0]):
                raise ValueError(f"`transform.{name}` must hold one number per channel ({self.input_shape[0]}). "
                                 f"Received: {values!r}")
        return ImagePrep(self.input_shape, self.image["fit"], self.image["interpolation"],
                         None if mean is None else tuple(mean), None if std is None else tuple(std))

    @property
    def name(self) -> str:
        """The network's name, e.g. ``lenet5`` or a layer table's file stem."""
        return str(self.source.get("name", "network"))


class Run:
    """One run directory: its model card, and everything else read through it."""

    def __init__(self, folder: Path, card: ModelCard, module: nn.Module | None = None) -> None:
        self.folder = folder
        self.card = card
        self.module = module  # the network of a `module` source (a user's own class), given or imported

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}, task={self.card.task!r}, network={self.card.name!r})"

    # ---- opening and creating ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path | Run, *, model: nn.Module | None = None, trust_code: bool = False) -> Run:
        """The run in ``folder`` (a Run is returned as it is); a folder that is not one is an error saying so.

        A run of a user's own network class (trained with ``cnnkit.train(model=module)``) needs that network:
        ``model``, built as for training (its weights are replaced by the run's), or ``trust_code=True`` to import
        the class the run names and call it without arguments. Neither is needed for other runs.
        """
        if isinstance(folder, Run):
            return folder
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a run directory (no such folder); train one with `cnnkit train`")
        card, config_file = inside(path, CARD), inside(path, CONFIG)
        if not card.exists():
            raise FileNotFoundError(f"{path}: not a run directory of `cnnkit train` (no {CARD})")
        config = Fields(read_json(config_file), config_file).values if config_file.exists() else None
        opened = cls(path, ModelCard.from_dict(read_json(card), card, config))
        source = opened.card.source
        if model is not None and source.get("kind") != "module":
            raise ValueError(f"{path}: the run's network is {source.get('kind')} {opened.card.name!r}, which cnnkit "
                             f"builds itself; leave out `model`")
        if source.get("kind") == "module" and model is None and trust_code:
            from cnnkit.network import module_class

            kind = module_class(source)
            try:
                model = kind()
            except TypeError as error:
                raise TypeError(f"{path}: {source['class']}() cannot be called without arguments ({error}); pass "
                                f"the network built as for training: load_run({str(path)!r}, model="
                                f"{kind.__name__}(...))") from None
        opened.module = model
        return opened

    @classmethod
    @contextmanager
    def create(cls, folder: Path, card: ModelCard, config: dict[str, Any], *, resumable: bool = True) -> Iterator[Run]:
        """A new run in ``folder`` (made if missing; refused if it holds files), with its card and config written.

        If the block raises before the run's first checkpoint, what it wrote is
        removed again (the folder too, if this made it): a failed start leaves
        nothing behind. A run that cannot be resumed (``resumable=False``:
        ``cnnkit transfer``) is removed whenever it fails.
        """
        if check_out_folder(folder):
            for path in _start_files(folder) or ():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
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
    def file(self, name: str | Path) -> Path:
        """``RUN/name``, the run's own file: a symbolic link inside the run is refused (:func:`cnnkit.fileio.inside`),
        so every reader of a run reads only the run."""
        return inside(self.folder, name)

    def config(self) -> dict[str, Any]:
        """``config.json``: the options the run was made with."""
        return Fields(read_json(self.file(CONFIG)), self.folder / CONFIG).values

    def network(self) -> nn.Module:
        """The trained network, in eval mode (weights from ``model.safetensors``, no pickle)."""
        model = self.fresh_network()
        load_weights(self.file(WEIGHTS), model)
        return model.eval()

    def fresh_network(self) -> nn.Module:
        """The run's network with new, untrained weights (what resume restores a checkpoint into).

        The card's source is first built on the ``meta`` device (no memory): it must fit this machine
        (:func:`cnnkit.memory.check_fits`) and output what the task needs for the card's classes.
        """
        from cnnkit.memory import build_checked
        from cnnkit.network import untrusted_module

        card = self.card
        expected = card.make_task().output_shape(card.input_shape, len(card.class_names))
        if card.source.get("kind") == "module":
            if self.module is None:
                raise ValueError(f"{self.folder}: {untrusted_module(card.source, self.folder)}")
            return self.module
        return build_checked(card.source, card.input_shape, f"{self.folder / CARD}: `source`", expected)

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
        if data is None and self.card.data is None and self.file(HELD_OUT).is_file():
            return self._stored_held_out(), self.card.eval_split or "test"
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
            what = f"--data {spec.name}" if data is not None else f"{spec.name} (the run's data, as read now)"
            raise ValueError(f"{what}: its classes {list(held_out.class_names)[:4]}... and image shape "
                             f"{list(held_out.images.shape[1:])} differ from the run's {list(self.card.class_names)[:4]}"
                             f"... and {list(self.card.input_shape)}")
        return held_out, split

    def _stored_held_out(self) -> ImageDataset:
        """``heldout.safetensors``: the held-out split of data given from Python, as training saved it."""
        from safetensors.torch import load as load_safetensors

        from cnnkit.data import ImageDataset

        path = self.file(HELD_OUT)
        check_regular(path)
        try:
            tensors = load_safetensors(path.read_bytes())
            held_out = ImageDataset(tensors["images"], tensors["labels"], self.card.class_names,
                                    f"{self.folder.name}/held-out", source=str(path),
                                    segmentation=tensors.get("segmentation"))
        except Exception as error:  # safetensors' own errors, a missing tensor, a tensor of the wrong kind
            raise ValueError(f"{path}: not the run's held-out split ({type(error).__name__}: {error})") from None
        if held_out.input_shape != self.card.input_shape:
            raise ValueError(f"{path}: images of shape {list(held_out.input_shape)}, but the run's network takes "
                             f"{list(self.card.input_shape)}")
        return held_out

    def input_from_file(self, path: str | Path) -> torch.Tensor:
        """An image file as this network's input ``(C, H, W)``: read exactly as the run's training data was."""
        return input_from_file(path, self.card.prep())

    def metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` (``cnnkit evaluate``'s result), or None before the run is evaluated."""
        path = self.file(METRICS)
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
        atomic_write(self.folder / HISTORY, "".join(json_text(record, None) + "\n" for record in history).encode())

    def save_held_out(self, held_out: ImageDataset) -> None:
        """Keep the held-out split of data given from Python (``heldout.safetensors``), which no name loads again."""
        from safetensors.torch import save as save_safetensors

        tensors = {"images": held_out.images.cpu().contiguous(), "labels": held_out.labels.cpu().contiguous(),
                   **({} if held_out.segmentation is None else {"segmentation": held_out.segmentation.cpu().contiguous()})}
        atomic_write(self.folder / HELD_OUT, save_safetensors(tensors))

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.folder / CONFIG, config)

    def save_weights(self, model: nn.Module) -> None:
        save_weights(self.folder / WEIGHTS, model)

    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        """Write the checkpoint atomically after checking it is whole and consistent (:func:`check_checkpoint`)."""
        check_checkpoint(payload, self.folder / CHECKPOINT)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(self.folder / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's contents, unpickled with ``weights_only=True`` (tensors and plain values only)."""
        path = self.file(CHECKPOINT)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no checkpoint: the run stopped before its first epoch finished, so "
                                    f"there is nothing to resume; train it again with the same --out {self.folder}")
        check_regular(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged or foreign file: torch raises several types here
            raise ValueError(f"{path}: not a cnnkit checkpoint ({type(error).__name__}: {error})") from None
        if not isinstance(payload, dict) or "model" not in payload:
            raise ValueError(f"{path}: not a cnnkit checkpoint (no model state)")
        check_checkpoint(payload, path)
        return payload

    def restore(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's model state into ``model``; another network's is an error naming the keys."""
        load_state(model, state, self.folder / CHECKPOINT)


def load_run(path: str | Path, *, model: nn.Module | None = None, trust_code: bool = False) -> Run:
    """Open the run in ``path`` for ``cnnkit.evaluate``, ``predict``, ``report`` and ``export``.

    A run of your own network class needs the network: pass ``model`` built as for training (the run's
    weights replace its own), or ``trust_code=True`` to import the class the run names
    (``package.module:Class``) and call it without arguments; importing runs that module's code, so trust it first.

    >>> import cnnkit
    >>> cnnkit.load_run("no/such/run")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/run: not a run directory (no such folder); train one with `cnnkit train`
    """
    return Run.open(path, model=model, trust_code=trust_code)


def _start_files(folder: Path) -> list[Path] | None:
    """The files of a run killed before its first checkpoint (the card, config and summary written at its start,
    and temporary files of a write cut short), or None if ``folder`` holds anything else."""
    if not (folder / CARD).is_file() or (folder / CHECKPOINT).exists():
        return None
    def written_at_start(entry: Path) -> bool:
        if entry.is_symlink():
            return False
        if entry.is_dir():  # checkpoint/ holding only the temporary file of a first checkpoint cut short
            return entry.name == CHECKPOINT.parent.name and all(
                inner.name.endswith(".tmp") and inner.is_file() for inner in entry.iterdir())
        temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
        return entry.is_file() and (entry.name in (CARD, CONFIG, SUMMARY, HISTORY, HELD_OUT) or temporary)

    found = list(folder.iterdir())
    return found if all(written_at_start(entry) for entry in found) else None


def check_out_folder(folder: Path) -> str | None:
    """Refuse ``folder`` as a new run's ``--out`` unless it is missing, empty, or a run killed before its first
    checkpoint (which ``--resume`` cannot continue); for that last one, the line that says it will be replaced."""
    if not folder.exists() or not any(folder.iterdir()):
        return None
    if _start_files(folder) is not None:
        return (f"{folder} holds a run stopped before its first checkpoint (nothing to resume): starting it again "
                f"there")
    raise ValueError(f"--out {folder}: the directory exists and is not empty; choose another, or continue a "
                     f"training run with `cnnkit train --resume {folder}`")


CHECKPOINT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "model": dict, "optimizer": dict, "scheduler": dict, "epoch": int, "batch": int, "loss_sum": float,
    "correct": (int, float), "seen": int, "elapsed": float, "history": list, "torch_rng": torch.Tensor}


def check_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """A checkpoint is whole and consistent, or a ValueError says what is wrong.

    Every field is there with its type; the schedule has taken exactly one step per completed batch
    (``steps_per_epoch``, recorded since checkpoints are checked, gives the count); no parameter has
    taken more optimizer steps than the run completed (an optimizer update cut in the middle leaves
    some parameters one step ahead).
    """
    for key, kind in CHECKPOINT_FIELDS.items():
        if key not in payload:
            raise ValueError(f"{path}: not a whole cnnkit checkpoint: no {key!r} (a weights-only file cannot be resumed)")
        if not isinstance(payload[key], kind) or isinstance(payload[key], bool):
            raise ValueError(f"{path}: `{key}` has the wrong type ({type(payload[key]).__name__})")
    steps = payload.get("steps_per_epoch")
    if not isinstance(steps, int) or steps < 1:
        return  # an older checkpoint: nothing to count against
    done = payload["epoch"] * steps + payload["batch"]
    if not 0 <= payload["batch"] <= steps:
        raise ValueError(f"{path}: batch {payload['batch']} is not within an epoch of {steps} batches")
    scheduled = payload["scheduler"].get("last_epoch")
    if scheduled != done:
        raise ValueError(f"{path}: a torn checkpoint: the schedule has taken {scheduled} steps but {done} batches are "
                         f"complete; resume from an earlier checkpoint or train again")
    taken = [float(state["step"]) for state in payload["optimizer"].get("state", {}).values()
             if isinstance(state, dict) and "step" in state]
    if taken and max(taken) > done:
        raise ValueError(f"{path}: a torn checkpoint: a parameter has taken {max(taken):.0f} optimizer steps but "
                         f"{done} batches are complete; resume from an earlier checkpoint or train again")


def first_non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding NaN or infinity, or None."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def save_weights(path: Path, model: nn.Module) -> None:
    """``model``'s state as a safetensors file, atomically."""
    from safetensors.torch import save as save_safetensors

    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    atomic_write(path, save_safetensors(state))


def load_weights(path: Path, model: nn.Module) -> None:
    """Load safetensors weights into ``model``; a file for another network is a ``ValueError`` naming the keys."""
    from safetensors.torch import load as load_safetensors

    try:
        check_regular(path)
        state = load_safetensors(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such weight file") from None
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None
    bad = first_non_finite(state)
    if bad is not None:
        raise ValueError(f"{path}: the weights hold NaN or infinity ({bad}): the training diverged; train again with "
                         f"a smaller --lr or --clip-grad-norm 1.0")
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
