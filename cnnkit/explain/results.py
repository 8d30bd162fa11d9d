"""What checking one slide example gives: the checks, the slide's misprints, the working, and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnkit.explain.slide_checks import all_same_as_printed
from cnnkit.explain.steps import Explanation
from cnnkit.explain.volume import VolumeExplanation


@dataclass(frozen=True)
class Check:
    """One number (or table row) recomputed, beside the value the fixture says is correct."""

    what: str  # e.g. "output", "max pooling", "n=6, f=3, p=1, s=1"
    computed: Any
    expected: Any
    as_printed: bool = False  # numbers: the expected value may be rounded to the digits it shows (2.33 for 7/3)

    @property
    def ok(self) -> bool:
        if self.as_printed:
            return all_same_as_printed(self.expected, self.computed)
        return bool(self.computed == self.expected)


@dataclass(frozen=True)
class ExampleResult:
    """One example, recomputed: the explanations, the checks against the correct values, and the slide's misprints."""

    id: str
    source: str
    kind: str  # "convolution", "pooling", "output_size" or "parameters"
    explanations: list[Explanation | VolumeExplanation]
    checks: list[Check]
    slide_differences: list[dict[str, Any]] = field(default_factory=list)  # where the slide prints another number
    slide_error: str | None = None  # the fixture's note on the slide's mistake
    table: list[dict[str, Any]] = field(default_factory=list)  # parameter examples: the layer table, row by row
    notes: list[str] = field(default_factory=list)
    slide_variants: list[dict[str, Any]] = field(default_factory=list)  # the input or kernel as another slide prints it
    printed_count: int = 0  # how many numbers the slide prints that were compared

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "ok": self.ok,
            "checks": [{"what": c.what, "computed": c.computed, "expected": c.expected, "ok": c.ok} for c in self.checks],
            "printed_count": self.printed_count,
            "slide_differences": self.slide_differences,
            "slide_variants": self.slide_variants,
            "slide_error": self.slide_error,
            "table": self.table,
            "notes": self.notes,
            "explanations": [e.to_dict() for e in self.explanations],
        }
