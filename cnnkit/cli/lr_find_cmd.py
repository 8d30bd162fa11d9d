"""``cnnkit lr-find``: the learning-rate range test, its curve as a figure and the suggested rates."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    from cnnkit.cli.train_cmd import add_config_flags

    parser = subparsers.add_parser(
        name, help=help_text, argument_default=argparse.SUPPRESS,
        description="Train mini-batches with a learning rate growing from --start to --end (geometrically) and "
                    "record the loss: where it falls fastest is a good peak rate for `cnnkit train --lr`. Takes "
                    "the options of `cnnkit train` (model, data, optimizer, batch size ...); writes only the figure.",
        epilog="examples:\n  cnnkit lr-find --model lenet5 --data fashion-mnist\n"
               "  cnnkit lr-find --model resnet_small --optimizer sgd --batch-size 256 --out lr.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(parser, skip=("out", "epochs", "schedule", "warmup_epochs", "step_epochs", "step_gamma",
                                   "lr", "eval_every", "early_stop", "recipe", "resume"))
    parser.add_argument("--start", type=float, default=1e-7, help="the first rate (default: 1e-7)")
    parser.add_argument("--end", type=float, default=10.0, help="the last rate (default: 10)")
    parser.add_argument("--steps", type=int, default=100, help="mini-batches, one rate each (default: 100)")
    parser.add_argument("--out", default="lr_find.png", help="the figure (default: lr_find.png)")
    parser.add_argument("--json", action="store_true", default=False, help="print the curve and rates as JSON")


def run(args: argparse.Namespace) -> int:
    from cnnkit.training import TrainConfig
    from cnnkit.training.lr_find import draw, find_lr

    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"out"}
    config = TrainConfig.from_dict({name: getattr(args, name) for name in names if hasattr(args, name)})
    result = find_lr(config, args.start, args.end, args.steps)
    figure = draw(result, Path(args.out), f"learning-rate range test: {config.model} on {config.data}, "
                                          f"{config.optimizer}, batch {config.batch_size}")
    if args.json:
        print(json_text({**result.as_dict(), "figure": str(figure)}))
        return 0
    print(f"tried {len(result.rates)} rates from {args.start:g} to {result.rates[-1]:.3g}"
          f"{' (stopped: the loss diverged)' if result.diverged else ''}")
    if result.steepest is not None and result.minimum_tenth is not None:
        print(f"suggested --lr: {result.steepest:.2g} (steepest descent of the loss); {result.minimum_tenth:.2g} "
              f"(a tenth of the rate at the lowest loss). cnnkit train's default for {config.optimizer}: "
              f"{config.learning_rate:g}")
    print(f"figure: {figure}")
    return 0
