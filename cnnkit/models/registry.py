"""The model zoo's registry: small entry functions, registered by name, built with :func:`create`.

An entry function builds one network and returns a plain ``torch.nn.Module``.
Its signature is the single source of its defaults: ``num_classes`` and
``in_channels`` (keyword parameters with defaults), and any further keyword
parameters are the model's *options* (``activation``, ``width``, ...). The
decorator adds what the signature cannot say: the kind of network, the default input
size and the pretrained weights, if any::

    @register(kind="classification", input_size=(32, 32))
    def lenet5(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
               activation: str = "relu") -> nn.Module:
        ...  # the docstring's first line becomes ``info("lenet5").description``

    model = create("lenet5", num_classes=10, in_channels=1, input_size=28)  # options: input_size, activation
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from cnnkit import arith
from cnnkit.models.pretrained import PretrainedWeights, load_pretrained

# what a network is; the tasks (cnnkit.tasks) say which kind they train (Task.zoo_kind)
Kind = Literal["classification", "segmentation", "autoencoder", "detection", "instance"]
KINDS: tuple[Kind, ...] = ("classification", "segmentation", "autoencoder", "detection", "instance")

# parameters of an entry function that `create` fills itself; the others are options
_COMMON = ("num_classes", "in_channels")

EntryFn = TypeVar("EntryFn", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model, without building it."""

    name: str
    kind: Kind
    input_shape: tuple[int, int, int]  # default input (C, H, W), without the batch dimension
    num_classes: int | None  # default number of classes; None for autoencoders (output = input's shape)
    options: tuple[str, ...]  # keyword options of the entry function besides num_classes / in_channels
    weights: PretrainedWeights | None  # the pretrained weight set, if one exists
    description: str  # first line of the entry function's docstring

    @property
    def pretrained(self) -> bool:
        """Whether ``create(name, pretrained=True)`` can load weights."""
        return self.weights is not None


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., nn.Module]
    info: ModelInfo


_REGISTRY: dict[str, _Entry] = {}


def _default(signature: inspect.Signature, fn_name: str, parameter: str) -> Any:
    param = signature.parameters.get(parameter)
    if param is None:
        return None
    if param.default is inspect.Parameter.empty:
        raise TypeError(f"model entry function `{fn_name}`: `{parameter}` needs a default value. Received: {param}")
    return param.default


def register(
    kind: Kind,
    input_size: arith.IntOrPair,
    *,
    name: str | None = None,
    weights: PretrainedWeights | None = None,
) -> Callable[[EntryFn], EntryFn]:
    """Decorator that adds an entry function to the zoo under ``name`` (default: the function's name).

    ``input_size`` is the default ``(H, W)`` the model is built for. An entry
    function with an ``input_size`` option must default to the same size.
    Registering a name twice raises ``ValueError``.
    """
    if kind not in KINDS:
        raise ValueError(f"register: `kind` must be one of {', '.join(KINDS)}. Received: kind={kind!r}")
    size = arith.pair(input_size, "input_size", minimum=1)

    def decorate(fn: EntryFn) -> EntryFn:
        model_name = name or fn.__name__
        if model_name in _REGISTRY:
            raise ValueError(
                f"a model named {model_name!r} is already registered (by {_REGISTRY[model_name].fn.__module__}); "
                f"pick another name. Received: name={model_name!r}"
            )
        signature = inspect.signature(fn)
        in_channels = _default(signature, fn.__name__, "in_channels")
        if not isinstance(in_channels, int):
            raise TypeError(f"model entry function `{fn.__name__}` must take `in_channels: int = ...`. Received: {signature}")
        declared = _default(signature, fn.__name__, "input_size")
        if declared is not None and arith.pair(declared, "input_size") != size:
            raise ValueError(
                f"model {model_name!r}: the entry function's default input_size ({declared}) differs from the "
                f"registered one. Received: input_size={input_size!r}"
            )
        options = tuple(p for p in signature.parameters if p not in _COMMON)
        doc = inspect.getdoc(fn) or ""
        info = ModelInfo(
            name=model_name,
            kind=kind,
            input_shape=(in_channels, size[0], size[1]),
            num_classes=_default(signature, fn.__name__, "num_classes"),
            options=options,
            weights=weights,
            description=doc.splitlines()[0] if doc else "",
        )
        _REGISTRY[model_name] = _Entry(fn, info)
        return fn

    return decorate


def names() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    entry = _REGISTRY.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(
            f"unknown model {name!r}. {hint}Run `cnnkit models` for the list. Received: name={name!r}"
        )
    return entry


def info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; an unknown name suggests the nearest ones."""
    return _entry(name).info


def option_defaults(name: str) -> dict[str, Any]:
    """The options of model ``name`` with their defaults (``--model-options KEY=VALUE`` sets them), in order.

    >>> option_defaults("unet")
    {'width': 64, 'batch_norm': True}
    """
    signature = inspect.signature(_entry(name).fn)
    return {key: signature.parameters[key].default for key in info(name).options}


def create(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    pretrained: bool = False,
    **options: Any,
) -> nn.Module:
    """Build the registered model ``name``; ``None`` keeps the model's default class / channel count.

    ``pretrained=True`` loads the model's weight set (see ``info(name).weights``);
    a different ``num_classes`` then keeps the backbone and puts a freshly
    initialised classifier on top. ``options`` are the entry function's own
    keyword arguments; an unknown option raises ``TypeError`` naming it.
    """
    entry = _entry(name)
    model_info = entry.info
    unknown = sorted(set(options) - set(model_info.options))
    if unknown:
        valid = ", ".join(model_info.options) or "none"
        raise TypeError(
            f"model {name!r} has no option {', '.join(repr(u) for u in unknown)} (its options: {valid}). "
            f"Received: {', '.join(f'{k}={options[k]!r}' for k in unknown)}"
        )
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"model {name!r}: `{arg}` must be a positive int. Received: {arg}={value!r}")
    kwargs: dict[str, Any] = dict(options)
    if num_classes is not None:
        if model_info.num_classes is None:
            raise TypeError(
                f"model {name!r} ({model_info.kind}) has no classes: its output has the input's shape. "
                f"Received: num_classes={num_classes!r}"
            )
        kwargs["num_classes"] = num_classes
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    if not pretrained:
        return entry.fn(**kwargs)
    weights = model_info.weights
    if weights is None:
        with_weights = [n for n in names() if _REGISTRY[n].info.weights is not None]
        raise ValueError(
            f"model {name!r} has no pretrained weights; models that have: {', '.join(with_weights) or 'none'}. "
            f"Received: pretrained=True"
        )
    # build the layout the weights were saved in, then adapt the ends
    kwargs.update(num_classes=weights.num_classes, in_channels=weights.input_size[0])
    model = entry.fn(**kwargs)
    return load_pretrained(
        model,
        weights,
        num_classes=weights.num_classes if num_classes is None else num_classes,
        in_channels=weights.input_size[0] if in_channels is None else in_channels,
    )


def num_parameters(name: str, **kwargs: Any) -> int:
    """Parameter count of ``create(name, **kwargs)``, built on the meta device (no memory, no init time)."""
    with torch.device("meta"):
        model = create(name, **kwargs)
    return sum(p.numel() for p in model.parameters())
