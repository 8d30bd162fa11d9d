"""Progress of long steps outside the training loop (decoding an image folder, evaluating, extracting features).

No minute passes in silence: on a terminal a transient bar with the time left appears once a step has taken a
second; elsewhere (logs, notebooks, CI) a plain line goes to standard error every :data:`HEARTBEAT_S` seconds.
Steps that end within those times print nothing, so small datasets and tests stay quiet. Standard output is left
alone (``--json`` output stays one JSON value)::

    with Ticker("decoding image folder photos/", total=len(files), unit="images") as ticker:
        for file in files:
            ...
            ticker.advance()
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

HEARTBEAT_S = 10.0  # the longest a step stays silent when not on a terminal
BAR_AFTER_S = 1.0  # a bar appears on a terminal once a step has taken this long


class Ticker:
    """Counts ``total`` items of one step and says how far it is (module doc). A context manager."""

    def __init__(self, what: str, total: int, unit: str = "items", stream: TextIO | None = None) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = self.last_line = time.perf_counter()
        self.bar: Any = None
        self.task: Any = None
        self.lines = 0  # plain lines printed (tests read it)

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _left(self, now: float) -> str:
        if not self.done:
            return ""
        seconds = (self.total - self.done) * (now - self.started) / self.done
        return f", about {seconds:.0f} s left"

    def advance(self, count: int = 1) -> None:
        """``count`` more items are done."""
        self.done += count
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        elif self._terminal():
            if now - self.started >= BAR_AFTER_S and self.done < self.total:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                self.bar = Progress(TextColumn(self.what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                    transient=True, console=Console(file=self.stream))
                self.bar.start()
                self.task = self.bar.add_task(self.what, total=self.total, completed=self.done)
        elif now - self.last_line >= HEARTBEAT_S and self.done < self.total:
            print(f"{self.what}: {self.done:,}/{self.total:,} {self.unit}{self._left(now)}", file=self.stream,
                  flush=True)
            self.last_line = now
            self.lines += 1

    def _terminal(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False
