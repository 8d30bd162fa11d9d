"""``cnnkit evaluate RUN``: the metrics and figures of a trained run, for its task."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from cnnkit.evaluation.dense import ReconstructionResult, SegmentationResult
from cnnkit.evaluation.metrics import EvaluationResult
from cnnkit.fileio import json_text

if TYPE_CHECKING:
    from cnnkit.tasks import Result


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Evaluate a trained run on its held-out split. Classification: loss, accuracy, top-5, per-class "
                    "precision/recall/F1, the confusion matrix (metrics.json, confusion_matrix.png) and the most "
                    "confident mistakes (mistakes.png). Segmentation: mean IoU, Dice, pixel accuracy, per-class IoU, "
                    "mask overlays (segmentation.png, segmentation_mistakes.png). Reconstruction and denoising: MSE, "
                    "PSNR and SSIM (of the noisy input too), image grids (reconstructions.png, denoising.png).")
    parser.add_argument("run", metavar="RUN", help="a run directory written by `cnnkit train`")
    parser.add_argument("--data", help="evaluate on another dataset with the same classes (default: the run's)")
    parser.add_argument("--data-dir", help="where that dataset's files are")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    parser.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                        help="refresh the run's report.html with these results (default: yes)")
    parser.add_argument("--json", action="store_true", help="print metrics.json to standard output")


def print_evaluation(result: Result) -> None:
    """A rich table of per-class metrics and the headline numbers (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 100)
    if isinstance(result, SegmentationResult):
        _print_segmentation(result, console)
        return
    if isinstance(result, ReconstructionResult):
        _print_reconstruction(result, console)
        return
    if not isinstance(result, EvaluationResult):  # a task of its own: its metrics.json, one scalar a line
        for key, value in result.as_dict().items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                console.print(f"{key}: {value}")
        return
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


def _print_segmentation(result: SegmentationResult, console: Any) -> None:
    from rich.table import Table

    console.print(f"{result.split} split: {result.count:,} images, mean IoU {result.mean_iou:.4f}, Dice "
                  f"{result.dice:.4f}, pixel accuracy {result.pixel_accuracy:.2%}, loss {result.loss:.4f}")
    table = Table()
    for column in ("class", "IoU", "Dice", "true pixels", "predicted pixels"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in result.as_dict()["per_class"]:
        iou, dice = ("-" if row[key] is None else f"{row[key]:.3f}" for key in ("iou", "dice"))
        table.add_row(f"{row['class']} {row['name']}", iou, dice, f"{row['pixels']:,}", f"{row['predicted_pixels']:,}")
    console.print(table)


def _print_reconstruction(result: ReconstructionResult, console: Any) -> None:
    from rich.table import Table

    what = f"denoising {result.noise}" if result.noise else "reconstruction"
    console.print(f"{result.split} split: {result.count:,} images, {what}; pixels on [0, 1]")
    table = Table()
    table.add_column("metric")
    table.add_column("output vs clean", justify="right")
    if result.noise:
        table.add_column("noisy input vs clean", justify="right")
    for name, value, noisy, form in (("MSE", result.mse, result.mse_noisy, "{:.5f}"),
                                     ("PSNR (dB)", result.psnr, result.psnr_noisy, "{:.2f}"),
                                     ("SSIM", result.ssim, result.ssim_noisy, "{:.4f}")):
        cells = [form.format(value)] + ([form.format(noisy)] if result.noise and noisy is not None else [])
        table.add_row(name, *cells)
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
        print(json_text({**result.as_dict(), **({"report": str(report.path)} if report else {})}))
        return 0
    print_evaluation(result)
    for path in result.files.values():
        print(f"  {path}")
    if report is not None:
        from cnnkit.cli.report_cmd import print_report

        print_report(report)
    return 0
