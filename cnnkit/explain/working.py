"""A worked calculation that is not a sliding window: activations, a dense layer, softmax, parameter counts, backprop.

Each explanation is data: named inputs, one step per number computed (a label and
the arithmetic with the numbers filled in), the output, notes, and, where the
calculation is made of convolutions (backprop), those convolutions worked out in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnkit.explain.steps import Explanation


@dataclass(frozen=True)
class Calculation:
    """One worked calculation; ``to_dict()`` is its JSON form."""

    op: str  # "activation", "dense", "softmax", "params", "backprop"
    title: str  # one line
    inputs: dict[str, Any]  # name -> JSON-ready value (numbers, lists, nested lists)
    output: Any  # JSON-ready
    steps: list[dict[str, Any]]  # each has "label" and "expression"; "details" (lines) where a step has parts
    notes: list[str] = field(default_factory=list)
    parts: list[Explanation] = field(default_factory=list)  # convolutions worked in full, in order
    extra: dict[str, Any] = field(default_factory=dict)  # op-specific JSON fields, e.g. "checks"

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "title": self.title,
            "inputs": self.inputs,
            "output": self.output,
            "steps": self.steps,
            "notes": self.notes,
            **self.extra,
            "parts": [part.to_dict() for part in self.parts],
        }
