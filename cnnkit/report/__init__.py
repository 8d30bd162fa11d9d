"""One HTML report per run: configuration, network, curves, metrics, figures, all in one self-contained file."""

from cnnkit.report.build import REPORT, Report, write_report

__all__ = ["REPORT", "Report", "write_report"]
