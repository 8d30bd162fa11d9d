"""The network a run trains, described so the run can rebuild it later.

Kinds of ``source`` in ``model.json``: ``zoo`` (a registered model and its
arguments), ``table`` (a layer table's text), and ``transfer`` (written by
``cnnkit transfer``: a ``base`` source, the base's input shape, the new
``head`` and the ``adapter`` in front; see :mod:`cnnkit.models.transfer_net`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

Shape = tuple[int, ...]


# the zoo's task (cnnkit.models.TASKS) of the networks each training task trains
ZOO_TASKS: dict[str, str] = {"classify": "classification", "segment": "segmentation", "reconstruct": "autoencoder",
                             "denoise": "autoencoder"}


def describe(model: str, input_shape: Shape, num_classes: int, task: str = "classify",
             options: Sequence[str] = ()) -> dict[str, Any]:
    """How to build ``model`` (a zoo name or a layer-table file) for this data and task: saved in ``model.json``.

    A layer table must end in what the task predicts: ``num_classes`` scores
    (classify), ``num_classes`` maps of the image's size (segment) or the image's
    own shape (reconstruct, denoise). A zoo model must be of the task's kind; it
    gets ``in_channels``, ``num_classes`` where it has classes, ``input_size``
    where it takes one, and ``options`` (``KEY=VALUE``). For ``denoise`` the
    denoising autoencoder's own noise layer is switched off (``noise=0``): the
    task corrupts the inputs itself, with the noise that ``--noise`` names.
    """
    from cnnkit import models, spec

    path = Path(model)
    if path.suffix == ".txt" or path.is_file():
        if options:
            raise ValueError(f"--model-options apply to zoo models; write them into the table {path}. "
                             f"Received: {', '.join(options)}")
        table = spec.load(path, input_shape)
        expected = _table_output(task, input_shape, num_classes)
        if table.output_shape != expected:
            need = (f"the data has {num_classes} classes" if task == "classify" else
                    f"--task {task} on this data needs {'x'.join(map(str, expected))}")
            raise ValueError(f"{path}: the table ends in {'x'.join(map(str, table.output_shape))} outputs, but {need}"
                             f"{_TABLE_HINTS[task].format(n=num_classes)}")
        return {"kind": "table", "name": path.stem, "text": table.to_text()}
    info = models.info(model)
    wanted = ZOO_TASKS[task]
    if info.task != wanted:
        fitting = [n for n in models.names() if models.info(n).task == wanted]
        raise ValueError(f"--model {model}: a {info.task} network cannot be trained with --task {task}, which needs a "
                         f"{wanted} network: {', '.join(fitting)} (cnnkit models); or leave --model out")
    kwargs: dict[str, Any] = {"in_channels": input_shape[0]}
    if info.num_classes is not None:
        kwargs["num_classes"] = num_classes
    if "input_size" in info.options:
        kwargs["input_size"] = [input_shape[1], input_shape[2]]
    if task == "denoise" and "noise" in info.options:
        kwargs["noise"] = 0.0
    kwargs.update(parse_options(model, info.options, options))
    return {"kind": "zoo", "name": model, "kwargs": kwargs}


_TABLE_HINTS = {
    "classify": "; make its last dense layer `dense {n}`",
    "segment": " (a score map per class at the image's size); end it in `conv {n} 1x1` with padded convolutions",
    "reconstruct": " (the image's own shape); end it in a layer with the image's channels",
    "denoise": " (the image's own shape); end it in a layer with the image's channels",
}


def _table_output(task: str, input_shape: Shape, num_classes: int) -> Shape:
    if task == "classify":
        return (num_classes,)
    if task == "segment":
        return (num_classes, *input_shape[1:])
    return tuple(input_shape)


def _value(text: str) -> Any:
    """``"16"`` -> 16, ``"0.5"`` -> 0.5, ``"false"`` -> False, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_options(model: str, known: Sequence[str], options: Sequence[str]) -> dict[str, Any]:
    """``["width=16"]`` -> ``{"width": 16}``; a key the model does not take is a ValueError naming its options."""
    settable = [k for k in known if k != "input_size"]  # the data sets the input size
    parsed: dict[str, Any] = {}
    for option in options:
        key, _, text = option.partition("=")
        key = key.strip()
        if key not in settable:
            near = difflib.get_close_matches(key, settable, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            why = "is set from the data" if key == "input_size" else "is not an option of this model"
            raise ValueError(f"--model-options {option}: {key!r} {why}.{hint} Options of {model}: "
                             f"{', '.join(settable) or 'none'}")
        parsed[key] = _value(text)
    return parsed


def build(source: dict[str, Any], input_shape: Shape) -> nn.Module:
    """The network that :func:`describe` described, with fresh weights.

    A table's final ``softmax`` is left out: training applies it inside the
    cross-entropy loss, and ``predict`` applies it to the logits.
    """
    from cnnkit import models, spec

    if source.get("kind") == "table":
        model = spec.build(spec.parse(source["text"], f"{source.get('name', 'table')}.txt", input_shape))
        if isinstance(model[-1], nn.Softmax):
            del model[-1]
        return model
    if source.get("kind") == "zoo":
        kwargs = dict(source["kwargs"])
        if "input_size" in kwargs:
            kwargs["input_size"] = tuple(kwargs["input_size"])
        return models.create(source["name"], **kwargs)
    if source.get("kind") == "transfer":
        # a base network with a new head behind an input adapter (cnnkit transfer): the base is itself a source
        from cnnkit.models.transfer_net import rebuild

        return rebuild(source, build(source["base"], tuple(source["base_input_shape"])))
    raise ValueError(f"unknown network source {source.get('kind')!r} in model.json")


def load_trained(run: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a run directory (weights from ``model.safetensors``, no pickle) and its ``model.json``."""
    from cnnkit.training import rundir

    folder = Path(run)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such run directory (train one with `cnnkit train`)")
    meta = rundir.read_json(folder / "model.json")
    for key in ("source", "input_shape", "class_names", "transform"):
        if key not in meta:
            raise ValueError(f"{folder / 'model.json'}: no {key!r}; the run directory is damaged or not cnnkit's")
    model = build(meta["source"], tuple(meta["input_shape"]))
    rundir.load_weights(folder / "model.safetensors", model)
    return model.eval(), meta
