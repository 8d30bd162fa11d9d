"""``cnnkit evaluate RUN``: metrics, confusion matrix and mistakes of a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cnnkit.evaluation.metrics import EvaluationResult


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Evaluate a trained run: loss, accuracy, top-5, per-class precision/recall/F1, the confusion "
                    "matrix (metrics.json, confusion_matrix.png) and the most confident mistakes (mistakes.png).")
    parser.add_argument("run", metavar="RUN", help="a run directory written by `cnnkit train`")
    parser.add_argument("--data", help="evaluate on another dataset with the same classes (default: the run's)")
    parser.add_argument("--data-dir", help="where that dataset's files are")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                        help="refresh the run's report.html with these results (default: yes)")
    parser.add_argument("--json", action="store_true", help="print metrics.json to standard output")


def print_evaluation(result: EvaluationResult) -> None:
    """A rich table of per-class metrics and the headline numbers (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 100)
    top5 = f", top-5 {result.top5_accuracy:.2%}" if result.top5_accuracy is not None else ""
    console.print(f"{result.split} split: {result.count:,} images, accuracy {result.accuracy:.2%}{top5}, "
                  f"loss {result.loss:.4f}")
    table = Table()
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for c in result.per_class:
        table.add_row(f"{c.index} {c.name}", f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", f"{c.support:,}")
    for label, avg in (("macro avg", result.macro), ("weighted avg", result.weighted)):
        table.add_row(label, f"{avg['precision']:.3f}", f"{avg['recall']:.3f}", f"{avg['f1']:.3f}", f"{result.count:,}")
    console.print(table)


def run(args: argparse.Namespace) -> int:
    from cnnkit.evaluation import evaluate

    result = evaluate(args.run, data=args.data, data_dir=args.data_dir, device=args.device)
    report = None
    if args.report:
        from cnnkit.report import write_report

        report = write_report(args.run)
    if args.json:
        # metrics.json, plus where the report went (metrics.json itself does not list it: the report reads it)
        print(json.dumps({**result.as_dict(), **({"report": str(report.path)} if report else {})}, indent=2))
        return 0
    print_evaluation(result)
    for path in result.files.values():
        print(f"  {path}")
    if report is not None:
        from cnnkit.cli.report_cmd import print_report

        print_report(report)
    return 0
