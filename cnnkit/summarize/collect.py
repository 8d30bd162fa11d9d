"""``summary(model, input_size)``: run one forward pass with hooks and describe every layer it called.

Works on any ``torch.nn.Module``. The skip connections between layers (a
residual ``out + identity``, U-Net's ``torch.cat``) are rows too, and the
receptive field follows every tensor through them (:mod:`cnnkit.summarize.trace`,
:mod:`cnnkit.summarize.flow`). Totals come from ``model.parameters()`` (each
parameter once, shared or not), so they always equal ``sum(p.numel())``;
the rows explain where the parameters sit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnkit import arith
from cnnkit import layers as L
from cnnkit.hooks import evaluating
from cnnkit.summarize.facts import LayerFacts, Shape, layer_facts
from cnnkit.summarize.flow import Merge, cells
from cnnkit.summarize.notes import model_notes
from cnnkit.summarize.trace import Call, Recorder, level


@dataclass
class LayerRow:
    """One call of one module in the forward pass. Shapes leave out the batch."""

    name: str  # dotted path in the model, e.g. "layer1.0.conv1"
    type: str  # class name, e.g. "Conv2d"
    depth: int  # 1 for the model's direct children
    input_shape: Shape | None
    output_shape: Shape | None
    weights: int
    biases: int
    trainable: str  # "yes", "no", "partly", or "" for a layer without parameters
    facts: LayerFacts
    receptive_field: arith.Pair | str | None = None  # (h, w) input pixels, "all", or None where unknown
    jump: arith.Pair | None = None
    call: int = 1  # which call of the module: one used twice (a ReLU after each sum) has a row per call
    join: bool = False  # an add / concat row: no module, two paths of the forward pass meet
    skip_from: tuple[str, ...] = ()  # a join: where each skip comes from ("layer1.0's input", "down.2"); "" unknown

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def label(self) -> str:
        """The name the table shows: ``layer1.0.relu``, and ``layer1.0.relu (call 2)`` for a module's second call."""
        return self.name if self.call == 1 else f"{self.name} (call {self.call})"


@dataclass
class ModelSummary:
    """Per-layer rows and model totals; render with ``to_text()``, ``as_dict()`` or print with rich."""

    model_name: str
    input_shape: Shape
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    param_bytes: int
    buffer_values: int  # BatchNorm running statistics and other buffers: state, not learnt
    activation_values: int  # outputs of all rows for one input: what a forward pass holds
    input_values: int
    dtype: str
    notes: list[str] = field(default_factory=list)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_macs(self) -> int:
        return sum(row.facts.macs for row in self.rows)

    def as_dict(self) -> dict[str, Any]:
        from cnnkit.summarize.render import as_dict

        return as_dict(self)

    def to_text(self, formulas: bool = True) -> str:
        from cnnkit.summarize.render import to_text

        return to_text(self, formulas=formulas)

    def __rich__(self) -> Any:
        from cnnkit.summarize.render import to_rich

        return to_rich(self)

    def __str__(self) -> str:
        return self.to_text()


def _shown_modules(model: nn.Module, depth: int) -> list[tuple[str, nn.Module]]:
    """Leaves down to ``depth``, and the containers at exactly ``depth`` (collapsed into one row)."""
    shown = []
    for name, module in model.named_modules():
        level = 0 if name == "" else name.count(".") + 1
        has_children = next(module.children(), None) is not None
        if (not has_children and level <= depth) or (has_children and level == depth):
            shown.append((name or type(model).__name__, module))
    return shown


def _check_input(input_size: Sequence[int]) -> Shape:
    if isinstance(input_size, int) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in input_size):
        raise ValueError(
            f"`input_size` must be the shape of one input without the batch, like (3, 32, 32). Received: {input_size!r}"
        )
    return tuple(input_size)


def summary(
    model: nn.Module, input_size: Sequence[int], *, depth: int = 3, dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None, name: str | None = None,
) -> ModelSummary:
    """Describe every layer of ``model`` for one input of shape ``input_size`` (no batch), e.g. ``(3, 32, 32)``.

    Runs one forward pass of a batch of one, in eval mode and without gradients
    (each module's train/eval mode is restored afterwards). ``depth`` is how far
    into nested modules the rows go; deeper containers are collapsed into one row.
    ``name`` titles the summary (the model's class name by default).

    >>> from torch import nn
    >>> s = summary(nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU()), (3, 32, 32))
    >>> s.rows[0].output_shape, s.total_params
    ((6, 28, 28), 456)
    """
    shape = _check_input(input_size)
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"`depth` must be a positive int. Received: depth={depth!r}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    recorder = Recorder(model, _shown_modules(model, depth))
    x = torch.zeros((1, *shape), dtype=dtype, device=device)
    recorder.start(x)
    try:
        with evaluating(model), torch.no_grad(), recorder:
            model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        where = f" in layer {recorder.running[-1]!r}" if recorder.running else ""
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{type(model).__name__} cannot take an input of shape {'x'.join(map(str, shape))}: the forward pass "
            f"failed{where}: {first_line}. Check --input/input_size (channels x height x width)."
        ) from None
    finally:
        recorder.remove()
    calls = recorder.calls
    result = _assemble(model, shape, calls, dtype)
    if name:
        result.model_name = name
    return result


def _assemble(model: nn.Module, shape: Shape, calls: list[Call], dtype: torch.dtype) -> ModelSummary:
    rows: list[LayerRow] = []
    first_call: dict[int, str] = {}  # module -> the row of its first call
    repeats: dict[int, int] = {}
    for call in calls:
        if call.merge is not None:
            rows.append(_merge_row(call, call.merge))
            continue
        module = call.module
        assert module is not None  # a call is a merge or a module's
        in_shape = tuple(call.x.shape[1:]) if call.x is not None else None
        out_shape = tuple(call.y.shape[1:]) if call.y is not None else None
        facts = layer_facts(module, in_shape, out_shape)
        facts.macs += call.inner_macs
        weights = biases = 0
        trainable = ""
        if id(module) in first_call:
            repeats[id(module)] = repeats.get(id(module), 1) + 1
            facts.notes.append(_reuse_note(module, first_call[id(module)]))
        else:
            first_call[id(module)] = call.name
            named = list(module.named_parameters())
            biases = sum(p.numel() for n, p in named if n.rsplit(".", 1)[-1] == "bias")
            weights = sum(p.numel() for _, p in named) - biases
            trainable = trainable_state(module)
        row = LayerRow(call.name, type(module).__name__, 0 if call.name == type(model).__name__ else level(call.name),
                       in_shape, out_shape, weights, biases, trainable, facts, call=repeats.get(id(module), 1))
        row.receptive_field, row.jump = cells(call.field)
        rows.append(row)
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    summary = ModelSummary(
        model_name=type(model).__name__,
        input_shape=shape,
        rows=rows,
        total_params=total,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_values=sum(b.numel() for b in model.buffers() if b.is_floating_point()),
        activation_values=sum(_numel(row.output_shape) for row in rows),
        input_values=_numel(shape),
        dtype=str(dtype).removeprefix("torch."),
    )
    summary.notes += model_notes(model, summary)
    return summary


def trainable_state(module: nn.Module) -> str:
    """``yes``, ``no``, ``partly`` or ``""`` (no parameters); a BatchNorm adds what happens to its statistics.

    ``"no, stats frozen"`` is a frozen BatchNorm done right (:class:`cnnkit.layers.FrozenBatchNorm2d`);
    ``"no, stats update"`` is the classic mistake: parameters frozen, but the
    running mean and variance still follow every training batch.
    """
    flags = {p.requires_grad for p in module.parameters()}
    trainable = "" if not flags else "yes" if flags == {True} else "no" if flags == {False} else "partly"
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
        if isinstance(module, L.FROZEN_BATCHNORMS):
            return f"{trainable or 'no'}, stats frozen"
        if trainable != "yes":
            return f"{trainable or 'no'}, stats update"
    return trainable


def _numel(shape: Shape | None) -> int:
    result = 1
    for size in shape or (0,):
        result *= size
    return result


def _merge_row(call: Call, merge: Merge) -> LayerRow:
    """The row of an addition or a concatenation: no parameters, no multiply-accumulates, the shapes that meet."""
    out_shape = tuple(call.y.shape[1:]) if call.y is not None else None
    row = LayerRow(call.name, merge.kind, call.depth, merge.main_shape, out_shape, 0, 0, "", merge.facts(),
                   join=True, skip_from=tuple(s for i, s in enumerate(merge.sources) if i != merge.main or merge.parallel))
    row.receptive_field, row.jump = cells(call.field)
    return row


def _reuse_note(module: nn.Module, first: str) -> str:
    """What a second call of one module means: shared parameters, or (a ReLU used twice) nothing at all."""
    count = sum(p.numel() for p in module.parameters())
    if count:
        return f"shared: the same {type(module).__name__} as row {first!r}, called again; its {count:,} parameters are counted there"
    return (f"reused: the same {type(module).__name__} as row {first!r}, called again; it has no parameters, "
            f"so nothing is shared or counted twice")
