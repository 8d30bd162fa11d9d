"""``cnnkit models``: the zoo's networks with their kind, size, default input and pretrained weights."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    subparsers.add_parser(
        name, help=help_text,
        description="List every registered model: name, kind (classification, segmentation, autoencoder), parameters at its default size, default input "
                    "(channels x height x width), default classes and whether pretrained weights exist.",
    ).add_argument("--json", action="store_true", help="print JSON instead of a table")


def model_rows() -> list[dict[str, Any]]:
    """One dict per registered model, in name order (the JSON rows of ``cnnkit models --json``)."""
    from cnnkit import models

    rows = []
    for name in models.names():
        info = models.info(name)
        rows.append({
            "name": name,
            "kind": info.kind,
            "params": models.num_parameters(name),
            "input_shape": list(info.input_shape),
            "num_classes": info.num_classes,
            "pretrained": info.pretrained,
            "options": list(info.options),
            "option_defaults": models.option_defaults(name),
            "description": info.description,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    rows = model_rows()
    if args.json:
        print(json_text({"models": rows}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cnnkit model zoo")
    for column, justify in (("name", "left"), ("kind", "left"), ("parameters", "right"), ("input", "left"),
                            ("classes", "right"), ("pretrained", "left"), ("--model-options (defaults)", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        options = ", ".join(f"{key}={value}" for key, value in row["option_defaults"].items() if key != "input_size")
        table.add_row(row["name"], row["kind"], f"{row['params']:,}", "x".join(map(str, row["input_shape"])),
                      "-" if row["num_classes"] is None else str(row["num_classes"]), "yes" if row["pretrained"] else "no",
                      options or "-")
    # a pipe has no width: let the table be as wide as it needs instead of cutting names at 80 columns
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0
