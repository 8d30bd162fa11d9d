"""The notes under a summary: what its numbers mean for this model, each only where it applies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from cnnkit.summarize.collect import LayerRow, ModelSummary

# the lecture's LeNet table (001_d03a2936918107bc.txt): what it prints, and what the network has
SLIDE_LENET_PRINTED = 61_795
SLIDE_LENET_TOTAL = 62_006


def model_notes(model: nn.Module, summary: ModelSummary) -> list[str]:
    """The notes for ``summary`` of ``model``: the slide's bias slip (on its own network only), skip connections,
    parameters in no row, BatchNorms that still learn statistics, buffers."""
    notes = []
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None and m.out_features > 1]
    one_bias_each = summary.total_params - sum(m.out_features - 1 for m in linears)
    if summary.total_params == SLIDE_LENET_TOTAL and one_bias_each == SLIDE_LENET_PRINTED:
        notes.append(
            f"A fully connected layer has one bias per output unit: (inputs + 1)*units. Counting one bias per layer "
            f"instead would give {one_bias_each:,} here instead of {summary.total_params:,}: the slip in the "
            f"lecture's LeNet table, which prints {SLIDE_LENET_PRINTED:,} for a network of {SLIDE_LENET_TOTAL:,}."
        )
    merges = [row for row in summary.rows if row.join]
    if merges:
        notes.append(_join_note(merges))
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


def _join_note(joins: list[LayerRow]) -> str:
    """Why the add / concat rows are there, and what they do to gradients and receptive fields."""
    kinds = sorted({row.type for row in joins})
    why = []
    if "add" in kinds:
        why.append("an addition hands its gradient unchanged to both paths, so the layers before a block still get "
                   "gradient when the block's own path shrinks it (`cnnkit explain gradients` measures it)")
    if "concat" in kinds:
        why.append("a concatenation hands the later layers the earlier, high-resolution maps (U-Net's decoder gets "
                   "the encoder's)")
    return (f"{len(joins)} row(s) named {' / '.join(kinds)} are not modules: the forward pass joins two paths there "
            f"(skip connections); {'; '.join(why)}. After a join a cell sees what either path sees: the larger "
            f"receptive field of the two (they share the jump).")
