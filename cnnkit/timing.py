"""Where a command's wall-clock time goes: named phases, from the process's start to its end (no torch here).

``cnnkit train`` records its phases (start-up and imports, data, network, summary, training, evaluation,
figures, report), writes them to the run as ``timings.json`` and prints them with ``--verbose``; the benchmark
``benchmarks/defaults_vs_tutorial.py`` reads them. A phase is measured with :func:`phase`::

    with phase("data"):
        splits = spec.load()

A phase inside another is its own: its time is taken out of the outer one's (the report's figures are
"figures", not "report").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_age() -> float | None:
    """Seconds since this process started (Linux: from ``/proc``), or None where that is not known."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / _CLOCK_TICKS  # field 22 of stat: start time in clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(uptime - started, 0.0)


class Phases:
    """Named wall-clock durations in the order they happened (a name used twice adds up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        """``{"phases": {name: seconds}, "total": seconds since the process started (when known)}``."""
        age = process_age()
        return {"phases": {name: round(value, 3) for name, value in self.seconds.items()},
                "total": None if age is None else round(age, 3)}

    def lines(self) -> list[str]:
        """One line per phase, with its share of the process's time so far, and the rest as "other"."""
        values = self.as_dict()
        total = values["total"] or sum(self.seconds.values())
        rows = [*self.seconds.items(), ("other", max(total - sum(self.seconds.values()), 0.0))]
        return [f"  {name:<24} {seconds:7.2f} s  {seconds / max(total, 1e-9):6.1%}" for name, seconds in rows] + \
            [f"  {'whole process':<24} {total:7.2f} s"]


PHASES = Phases()  # this process's
_INNER: list[float] = []  # per open phase: the seconds its inner phases took


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the wall-clock time of the ``with`` block, less its inner phases', to :data:`PHASES` under ``name``
    (also if it raises)."""
    started = time.perf_counter()
    _INNER.append(0.0)
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        PHASES.add(name, elapsed - _INNER.pop())
        if _INNER:
            _INNER[-1] += elapsed


def mark_startup() -> None:
    """Record the time from the process's start until now as "start-up and imports" (once)."""
    age = process_age()
    if age is not None and "start-up and imports" not in PHASES.seconds:
        PHASES.add("start-up and imports", age)
