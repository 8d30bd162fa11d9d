"""``summary(model, input_size)``: run one forward pass with hooks and describe every layer it called.

Works on any ``torch.nn.Module``. Totals come from ``model.parameters()`` (each
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
from cnnkit.hooks import evaluating, first_tensor
from cnnkit.summarize.facts import GLOBAL, POINTWISE, LayerFacts, Shape, layer_facts


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

    @property
    def params(self) -> int:
        return self.weights + self.biases


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


# one call of a shown module: (name, module, input, output, MACs of the leaves inside it)
Call = tuple[str, nn.Module, torch.Tensor | None, torch.Tensor | None, int]


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
    calls: list[Call] = []
    running: list[str] = []
    inner_macs: list[int] = []  # per running row: the MACs of the leaves called inside it (collapsed containers)

    def make_hooks(name: str) -> tuple[Any, Any]:
        def pre_hook(module: nn.Module, inputs: Any) -> None:
            running.append(name)
            inner_macs.append(0)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            running.pop()
            calls.append((name, module, first_tensor(inputs), first_tensor(output), inner_macs.pop()))

        return pre_hook, hook

    def leaf_hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if inner_macs:
            x, y = first_tensor(inputs), first_tensor(output)
            shapes = [tuple(t.shape[1:]) if t is not None else None for t in (x, y)]
            inner_macs[-1] += layer_facts(module, shapes[0], shapes[1]).macs

    handles = []
    shown = _shown_modules(model, depth)
    for module_name, module in shown:
        pre_hook, hook = make_hooks(module_name)
        handles += [module.register_forward_pre_hook(pre_hook), module.register_forward_hook(hook)]
    shown_ids = {id(module) for _, module in shown}
    for module in model.modules():
        if id(module) not in shown_ids and next(module.children(), None) is None:
            handles.append(module.register_forward_hook(leaf_hook))
    x = torch.zeros((1, *shape), dtype=dtype, device=device)
    try:
        with evaluating(model), torch.no_grad():
            model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        where = f" in layer {running[-1]!r}" if running else ""
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{type(model).__name__} cannot take an input of shape {'x'.join(map(str, shape))}: the forward pass "
            f"failed{where}: {first_line}. Check --input/input_size (channels x height x width)."
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    result = _assemble(model, shape, calls, dtype)
    if name:
        result.model_name = name
    return result


def _assemble(model: nn.Module, shape: Shape, calls: list[Call], dtype: torch.dtype) -> ModelSummary:
    rows: list[LayerRow] = []
    seen: dict[int, str] = {}
    for name, module, x, y, inner in calls:
        in_shape = tuple(x.shape[1:]) if x is not None else None
        out_shape = tuple(y.shape[1:]) if y is not None else None
        facts = layer_facts(module, in_shape, out_shape)
        facts.macs += inner
        weights = biases = 0
        trainable = ""
        if id(module) in seen:
            facts.notes.append(f"shared: its parameters are counted at {seen[id(module)]!r}")
        else:
            seen[id(module)] = name
            named = list(module.named_parameters())
            biases = sum(p.numel() for n, p in named if n.rsplit(".", 1)[-1] == "bias")
            weights = sum(p.numel() for _, p in named) - biases
            trainable = trainable_state(module)
        rows.append(LayerRow(name, type(module).__name__, 0 if name == type(model).__name__ else name.count(".") + 1,
                             in_shape, out_shape, weights, biases, trainable, facts))
    _receptive_fields(rows, calls)
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
    summary.notes += _model_notes(model, summary)
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


def _receptive_fields(rows: list[LayerRow], calls: list[Any]) -> None:
    """Receptive field and jump per row, while the rows form a chain (each row's input is the previous output)."""
    field_: arith.ReceptiveField | None = arith.ReceptiveField((1, 1), (1, 1))
    previous_output = None
    for row, (_, module, x, y, _) in zip(rows, calls, strict=True):
        if previous_output is not None and x is not previous_output:
            return  # a branch or a skip connection: a single receptive field per row no longer applies
        previous_output = y
        if field_ is None or isinstance(module, GLOBAL):
            row.receptive_field = "all"
            field_ = None
            continue
        if row.facts.window is not None:
            field_ = arith.receptive_fields([row.facts.window], start=field_)[0]
        elif not isinstance(module, POINTWISE):
            return  # a layer whose window cnnkit does not know
        row.receptive_field, row.jump = field_.size, field_.jump


def _model_notes(model: nn.Module, summary: ModelSummary) -> list[str]:
    notes = []
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None and m.out_features > 1]
    if linears:
        one_bias_each = summary.total_params - sum(m.out_features - 1 for m in linears)
        notes.append(
            f"A fully connected layer has one bias per output unit: (inputs + 1)*units. Counting one bias per layer "
            f"instead would give {one_bias_each:,} here instead of {summary.total_params:,}: the slip in the "
            f"lecture's LeNet table, which prints 61,795 for a network of 62,006."
        )
    in_rows = sum(row.params for row in summary.rows)
    if in_rows != summary.total_params:
        notes.append(
            f"{summary.total_params - in_rows:,} parameters belong to no row: modules the forward pass did not call, "
            f"or parameters held directly by a container."
        )
    updating = [row.name for row in summary.rows if row.trainable.endswith("stats update")]
    if updating:
        notes.append(f"{len(updating)} BatchNorm layer(s) ({', '.join(updating[:3])}{' ...' if len(updating) > 3 else ''}) "
                     f"have frozen parameters but will still update their running statistics in training mode; "
                     f"freeze them with cnnkit.layers.freeze_statistics (cnnkit transfer does).")
    if summary.buffer_values:
        notes.append(f"{summary.buffer_values:,} buffer values (e.g. BatchNorm running mean and variance) are state, "
                     f"not learnt parameters; Keras lists them as non-trainable parameters.")
    return notes
