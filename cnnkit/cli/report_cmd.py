"""``cnnkit report RUN``: write (or refresh) the run's self-contained ``report.html`` and its figures."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Write RUN/report.html: one self-contained page (images embedded, no scripts, opens offline) "
                    "with the configuration, the layer summary, the training curves, the metrics, the confusion "
                    "matrix, the most confident mistakes, the first-layer filters, and the feature maps and "
                    "Grad-CAM of a held-out image. `cnnkit train` and `cnnkit evaluate` refresh it too.",
        epilog="example:\n  cnnkit report runs/lenet5-fashion-mnist-20261121-120000 --sample 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a run directory written by `cnnkit train`")
    parser.add_argument("--sample", type=int, default=0, metavar="INDEX",
                        help="which held-out image to show feature maps and Grad-CAM for (default 0)")
    parser.add_argument("--json", action="store_true", help="print the files written as JSON")


def print_report(report: Any) -> None:
    """The report's path, and a line for each part that could not be drawn."""
    print(f"report: {report.path}")
    for note in report.notes:
        print(f"  note: {note}")


def run(args: argparse.Namespace) -> int:
    from cnnkit.report import write_report

    report = write_report(args.run, sample=args.sample)
    if args.json:
        print(json_text(report.as_dict()))
    else:
        print_report(report)
    return 0
