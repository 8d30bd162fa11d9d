"""``cnnkit summary TARGET``: the per-layer table of a layer-table file, a shipped table, or a zoo model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Show every layer's input and output shape, kernel, stride, padding, parameters, "
                    "multiply-accumulates and receptive field, with the formulas filled in; the additions and "
                    "concatenations of skip connections (ResNet, U-Net) are rows of their own.",
        epilog="examples:\n  cnnkit summary lenet_slides\n  cnnkit summary my_net.txt --input 1x28x28 --json\n"
               "  cnnkit summary resnet18 --input 3x64x64 --depth 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="TARGET",
                        help="a run directory, a layer-table file, a shipped table (lenet_slides, keras_slides) or a zoo model "
                             "(cnnkit models)")
    parser.add_argument("--input", metavar="CxHxW", help="input shape, replacing the table's `input` line (e.g. 1x28x28)")
    parser.add_argument("--depth", type=int, default=3, metavar="N", help="how deep into nested modules to show rows (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plain", action="store_true", help="plain text even on a terminal")


def resolve(target: str, input_shape: tuple[int, ...] | None) -> tuple[Any, tuple[int, ...], str]:
    """TARGET -> (model, input shape, title), by :func:`cnnkit.resolve.resolve`'s precedence."""
    from cnnkit import spec
    from cnnkit.memory import fitting
    from cnnkit.resolve import resolve as resolve_name

    found = resolve_name(target)
    if found.kind == "run":
        run = found.run()
        if input_shape is not None and tuple(input_shape) != run.card.input_shape:
            raise ValueError(f"--input: the run {target} takes {'x'.join(map(str, run.card.input_shape))} images. "
                             f"Received: --input {'x'.join(map(str, input_shape))}")
        return run.network(), run.card.input_shape, found.name
    if found.kind == "table":
        table = found.table(input_shape)
        title = found.path.name if found.path else found.name
        return fitting(lambda: spec.build(table), table.input_shape, title), table.input_shape, title
    return _zoo_model(target, input_shape)


def _zoo_model(name: str, input_shape: tuple[int, ...] | None) -> tuple[Any, tuple[int, ...], str]:
    """A zoo model at its default input, or built for ``--input`` (channels, and size where it is fixed)."""
    from cnnkit import models

    info = models.info(name)
    if input_shape is None:
        return models.create(name), info.input_shape, name
    if len(input_shape) != 3:
        raise ValueError(f"--input for {name} must be CxHxW. Received: {'x'.join(map(str, input_shape))}")
    options: dict[str, Any] = {"in_channels": input_shape[0]}
    if "input_size" in info.options:
        options["input_size"] = input_shape[1:]
    from cnnkit.memory import fitting

    return fitting(lambda: models.create(name, **options), input_shape, name), input_shape, name


def run(args: argparse.Namespace) -> int:
    from cnnkit import spec
    from cnnkit.summarize import summary

    input_shape = spec.parse_input_shape(args.input) if args.input else None
    model, shape, title = resolve(args.target, input_shape)
    result = summary(model, shape, depth=args.depth, name=title)
    if args.json:
        print(json_text(result.as_dict()))
    elif args.plain or not sys.stdout.isatty():
        print(result.to_text(), end="")
    else:
        from rich.console import Console

        Console().print(result)
    return 0
