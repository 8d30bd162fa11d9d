"""Figures and the report of a trained run, drawn by a separate process so that ``cnnkit train`` can return.

Drawing (matplotlib, Grad-CAM, the page) takes several seconds after the metrics are known; ``cnnkit train``
starts ``python -m cnnkit.report.background RUN`` and returns as soon as ``metrics.json`` is written. The process
evaluates again with figures (the same numbers: evaluation is deterministic) and writes the report; every file
is written atomically, so a reader sees the old file or the new one. Its output goes to ``RUN/figures.log``,
removed when it succeeds; a failure leaves the log and ``cnnkit report RUN`` draws everything in the foreground.
``cnnkit train --wait`` (or ``CNNKIT_WAIT=1`` in the environment) draws in the foreground instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOG = "figures.log"


def wait_wanted(flag: bool | None) -> bool:
    """Whether to draw in the foreground: ``--wait``/``--no-wait`` if given, else ``CNNKIT_WAIT``, else not (and
    always where a detached process cannot be started: not POSIX)."""
    if os.name != "posix":
        return True
    if flag is not None:
        return flag
    return os.environ.get("CNNKIT_WAIT", "").strip().lower() in ("1", "true", "yes", "on")


def start(run: Path, *, evaluate: bool, report: bool) -> int:
    """Start the drawing process for ``run`` in its own session (a Ctrl-C at the terminal does not reach it);
    returns its process id."""
    flags = [*([] if evaluate else ["--no-evaluate"]), *([] if report else ["--no-report"])]
    with open(run / LOG, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cnnkit.report.background", str(run), *flags],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    return process.pid


def draw(run: Path, *, evaluate: bool, report: bool) -> None:
    """The run's evaluation figures (``evaluate``), then its report (``report``); the log is removed when both
    succeed."""
    if evaluate:
        from cnnkit.evaluation import evaluate as evaluate_run

        evaluate_run(run)
    if report:
        from cnnkit.report import write_report

        write_report(run)
    (run / LOG).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    run = Path(argv[0])
    draw(run, evaluate="--no-evaluate" not in argv[1:], report="--no-report" not in argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
