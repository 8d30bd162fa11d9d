"""The network a run trains, described so the run can rebuild it later.

Kinds of ``source`` in ``model.json``: ``zoo`` (a registered model and its
arguments), ``table`` (a layer table's text), and ``transfer`` (written by
``cnnkit transfer``: a ``base`` source, the base's input shape, the new
``head`` and the ``adapter`` in front; see :mod:`cnnkit.models.transfer_net`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

Shape = tuple[int, ...]


def describe(model: str, input_shape: Shape, num_classes: int) -> dict[str, Any]:
    """How to build ``model`` (a zoo name or a layer-table file) for this data: saved in ``model.json``.

    A layer table must end in as many units as the data has classes; a zoo model
    gets ``num_classes``, ``in_channels`` and, where it takes one, ``input_size``.
    """
    from cnnkit import models, spec

    path = Path(model)
    if path.suffix == ".txt" or path.is_file():
        table = spec.load(path, input_shape)
        text = table.to_text()
        if table.output_shape != (num_classes,):
            raise ValueError(
                f"{path}: the table ends in {'x'.join(map(str, table.output_shape))} outputs, but the data has "
                f"{num_classes} classes; make its last dense layer `dense {num_classes}`"
            )
        return {"kind": "table", "name": path.stem, "text": text}
    info = models.info(model)
    if info.task != "classification":
        raise ValueError(f"--model {model}: a {info.task} network cannot be trained as a classifier; "
                         f"choose a classification model (cnnkit models)")
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_channels": input_shape[0]}
    if "input_size" in info.options:
        kwargs["input_size"] = [input_shape[1], input_shape[2]]
    return {"kind": "zoo", "name": model, "kwargs": kwargs}


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
