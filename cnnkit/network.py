"""The network a run trains, described so the run can rebuild it later: its ``source``.

Kinds of source (kept in the run's model card, :mod:`cnnkit.runs`): ``zoo`` (a
registered model and its arguments), ``table`` (a layer table's text),
``transfer`` (written by ``cnnkit transfer``: a ``base`` source, the base's
input shape, the new ``head`` and the ``adapter`` in front; see
:mod:`cnnkit.transfer.net`), and ``module`` (a user's own ``nn.Module`` given
from Python: its class's import path, which cnnkit imports only when told to
trust it, :func:`module_class`). A detector over another run's network
(``--model-options backbone=RUN_DIR``) is a ``zoo`` source with a ``backbone``:
that run's source, input shape and folder (:func:`run_backbone`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from cnnkit.tasks import Task

Shape = tuple[int, ...]


def describe(model: str, input_shape: Shape, num_classes: int, task: Task,
             options: Sequence[str] = ()) -> dict[str, Any]:
    """How to build ``model`` (a layer table or a zoo name, :mod:`cnnkit.resolve`) for this data and task: the source
    a run's model card keeps.

    A layer table must end in what the task predicts: ``num_classes`` scores
    (classify), ``num_classes`` maps of the image's size (segment) or the image's
    own shape (reconstruct, denoise). A zoo model must be of the task's kind; it
    gets ``in_channels``, ``num_classes`` where it has classes, ``input_size``
    where it takes one, the task's own ``zoo_kwargs`` where it takes them
    (denoise switches the denoising autoencoder's noise layer off: the task
    corrupts the inputs itself), and ``options`` (``KEY=VALUE``).
    """
    from cnnkit import models
    from cnnkit.resolve import resolve
    from cnnkit.runs import Run

    found = resolve(model, accept=("table", "zoo"), flag="--model")
    if found.kind == "table":
        if options:
            raise ValueError(f"--model-options apply to zoo models; write them into the table {model}. "
                             f"Received: {', '.join(options)}")
        table = found.table(input_shape)
        expected = task.output_shape(tuple(input_shape), num_classes)
        if table.output_shape != expected:
            need = (f"the data has {num_classes} classes" if expected == (num_classes,) else
                    f"--task {task.name} on this data needs {'x'.join(map(str, expected))}")
            raise ValueError(f"{model}: the table ends in {'x'.join(map(str, table.output_shape))} outputs, but {need}"
                             f"{task.table_hint.format(n=num_classes)}")
        return {"kind": "table", "name": found.name, "text": table.to_text()}
    info = models.info(model)
    wanted = task.zoo_kind
    if info.kind != wanted:
        fitting = [n for n in models.names() if models.info(n).kind == wanted]
        raise ValueError(f"--model {model}: a {info.kind} network cannot be trained with --task {task.name}, which needs a "
                         f"{wanted} network: {', '.join(fitting)} (cnnkit models); or leave --model out")
    kwargs: dict[str, Any] = {"in_channels": input_shape[0]}
    if info.num_classes is not None:  # the task's outputs: the classes, or localize's classes and box
        kwargs["num_classes"] = task.zoo_classes(num_classes)
    if "input_size" in info.options:
        kwargs["input_size"] = [input_shape[1], input_shape[2]]
    kwargs.update({key: value for key, value in task.zoo_kwargs.items() if key in info.options})
    kwargs.update(parse_options(model, info.options, options))
    source: dict[str, Any] = {"kind": "zoo", "name": model, "kwargs": kwargs}
    backbone = kwargs.get("backbone")
    # a run directory; a folder that happens to bear a zoo model's name (./fastnet/) does not hide the model
    if isinstance(backbone, str) and Path(backbone).is_dir() and (backbone not in models.names() or
                                                                   Run.is_run(backbone)):
        source["backbone"] = run_backbone(backbone, input_shape, bool(kwargs.get("pretrained_backbone")))
        kwargs["backbone"] = ""  # build() puts the run's network there
    return source


def table_input_change(model: str, input_shape: Shape, data: str) -> str | None:
    """What building layer table ``model`` for the ``input_shape`` of ``data``'s images changed, in words; None if
    ``model`` is no table, has no ``input`` line of its own, or was written for that shape.

    A table's ``input`` line says what it was written for (``lenet_slides``: 3x32x32). Training builds it for the
    images it trains on instead (Fashion-MNIST: 1x28x28), which changes every layer whose parameters depend on the
    input's size: the first convolution (its channels) and the first dense layer after ``flatten`` (its inputs).
    """
    from cnnkit.resolve import resolve
    from cnnkit.spec import SpecError, format_layer

    found = resolve(model, accept=("table", "zoo"), flag="--model")
    if found.kind != "table":
        return None
    try:
        own = found.table()
    except SpecError:  # no `input` line: the data's shape is the only one it has
        return None
    if tuple(own.input_shape) == tuple(input_shape):
        return None
    new = found.table(input_shape)
    before, after = _layer_params(own), _layer_params(new)
    changed = [f"`{format_layer(layer)}` {was:,} -> {now:,}"
               for layer, was, now in zip(own.layers, before, after, strict=True) if was != now]
    return (f"--model {model}: the table's `input {'x'.join(map(str, own.input_shape))}` was replaced by "
            f"{'x'.join(map(str, input_shape))}, the size of the {data} images, because a network is built for the "
            f"images it trains on; it has {sum(after):,} parameters instead of the table's {sum(before):,} "
            f"({'; '.join(changed) or 'no layer changed its parameters'}). To train it as written: "
            f"{_as_written(own.input_shape, input_shape)}, or edit its `input` line.")


def _as_written(own: Shape, data: Shape) -> str:
    """The flags that bring the data's images to a table's own input shape (square images only)."""
    if len(own) != 3 or len(data) != 3 or own[1] != own[2]:
        return f"give it {'x'.join(map(str, own))} images"
    flags = [f"--image-size {own[1]}"] if own[1:] != data[1:] else []
    if own[0] != data[0] and own[0] in (1, 3):
        flags.append("--no-grayscale" if own[0] == 3 else "--grayscale")
    return " ".join(flags)


def _layer_params(table: Any) -> list[int]:
    """Parameters of each layer of a checked table, built on the meta device (no memory, no initialisation)."""
    import torch

    from cnnkit.spec.torch_io import build_layer

    counts = []
    with torch.device("meta"):
        for layer, in_shape in zip(table.layers, (table.input_shape, *table.shapes), strict=False):
            counts.append(sum(p.numel() for p in build_layer(layer, in_shape).parameters()))
    return counts


def run_backbone(folder: str, input_shape: Shape, pretrained: bool) -> dict[str, Any]:
    """``backbone=RUN_DIR``: the run's network source, input shape and folder, for a detector over it; the run
    must be a classifier (``classify`` or ``localize``) of the data's channels, with its weights on disk."""
    from cnnkit.resolve import resolve
    from cnnkit.runs import WEIGHTS

    run = resolve(folder, accept=("run", "zoo"), flag="--model-options backbone").run()
    card = run.card
    where = f"--model-options backbone={folder}"
    if pretrained:
        raise ValueError(f"{where}: a run directory brings its own trained weights; leave out pretrained_backbone")
    if card.task not in ("classify", "localize"):
        raise ValueError(f"{where}: the run is a {card.task} run; a backbone must be a classifier (a run of "
                         f"--task classify or localize)")
    if card.source.get("kind") == "module":
        raise ValueError(f"{where}: {untrusted_module(card.source, folder)}; a detector over it is built from Python "
                         f"with cnnkit.models.create('centernet', backbone=network)")
    if card.input_shape[0] != input_shape[0]:
        raise ValueError(f"{where}: the run reads {card.input_shape[0]}-channel images, this data has "
                         f"{input_shape[0]}; train the backbone on images of the same channels")
    run.file(WEIGHTS)  # a symbolic link is refused here, before any training
    if not (run.folder / WEIGHTS).is_file():
        raise ValueError(f"{where}: the run has no {WEIGHTS} yet (it never finished an epoch)")
    return {"source": card.source, "input_shape": list(card.input_shape), "run": str(run.folder.resolve())}


def load_backbone(model: nn.Module, source: dict[str, Any]) -> str | None:
    """Start a detector built from ``source`` with its backbone run's trained weights (once, when training starts:
    afterwards they are the detector's own). Returns what was loaded, for the log; None without a run backbone."""
    from cnnkit.runs import Run

    backbone = source.get("backbone")
    if backbone is None:
        return None
    inner = getattr(model, "module", model)  # a DistributedDataParallel wrapper holds the network
    network = inner.backbone if isinstance(inner, nn.Module) else None
    if not isinstance(network, nn.Module):
        raise TypeError(f"{type(inner).__name__} has no backbone network to load {backbone['run']} into")
    run = Run.open(backbone["run"])
    if run.card.source != backbone["source"]:
        raise ValueError(f"--model-options backbone={backbone['run']}: the run's network changed since this run "
                         f"was described ({run.card.name}); start again")
    trained = run.network().state_dict()  # the run's own network, its weights checked as any run's are
    own = network.state_dict()  # what the detector kept of it: up to the feature map its heads read
    missing = [key for key in own if key not in trained or trained[key].shape != own[key].shape]
    if missing:
        raise ValueError(f"--model-options backbone={backbone['run']}: the run's weights do not fit the backbone "
                         f"({', '.join(missing[:3])}); start again")
    network.load_state_dict({key: trained[key] for key in own})
    count = sum(p.numel() for p in network.parameters())
    return f"backbone: {run.card.name} from {run.folder} ({count:,} trained weights)"


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
        if "backbone" in source:  # another run's network, fresh: training starts it from the run's weights
            kwargs["backbone"] = build(source["backbone"]["source"], tuple(source["backbone"]["input_shape"]))
        return models.create(source["name"], **kwargs)
    if source.get("kind") == "transfer":
        # a base network with a new head behind an input adapter (cnnkit transfer): the base is itself a source
        from cnnkit.transfer.net import rebuild

        return rebuild(source, build(source["base"], tuple(source["base_input_shape"])))
    if source.get("kind") == "module":
        raise ValueError(untrusted_module(source))
    raise ValueError(f"unknown network source {source.get('kind')!r}; expected zoo, table, transfer or module")


def module_source(model: nn.Module) -> dict[str, Any]:
    """The source of a user's own network: the class's name and import path (``package.module:Class``)."""
    kind = type(model)
    return {"kind": "module", "name": kind.__name__, "class": f"{kind.__module__}:{kind.__qualname__}"}


def untrusted_module(source: dict[str, Any], folder: object = "RUN") -> str:
    """Why a run of a user's own class is not rebuilt by itself, and the two ways to load it."""
    path, name = str(source.get("class", "?")), str(source.get("name", "Net"))
    return (f"the network is your own Python class {path}; cnnkit does not import code a run directory names "
            f"unless told to trust it. From Python: cnnkit.load_run({str(folder)!r}, model={name}(...)) with the "
            f"network built as for training, or cnnkit.load_run({str(folder)!r}, trust_code=True) to import it and "
            f"call {name}()")


def module_class(source: dict[str, Any]) -> type[nn.Module]:
    """Import the class a ``module`` source names (``trust_code=True``): an ImportError says what failed."""
    import importlib

    path = str(source.get("class", ""))
    module_name, _, qualname = path.partition(":")
    if module_name == "__main__":
        raise ImportError(f"{path}: the class was defined in the script that trained it (__main__), which cannot be "
                          f"imported from elsewhere; pass the network itself: load_run(..., model={qualname}(...)), "
                          f"or move the class into a module")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"{path}: cannot import the run's network class ({type(error).__name__}: {error}); make its "
                          f"module importable (installed, or on PYTHONPATH), or pass the network: load_run(..., "
                          f"model={qualname.rsplit('.', 1)[-1]}(...))") from None
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise ImportError(f"{path} is not an nn.Module class. Received: {type(found).__name__}")
    return found
