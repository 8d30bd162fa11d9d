"""``cnnkit explain gradients``: each layer's gradient norm in a deep plain network and with skip connections.

    cnnkit explain gradients
    cnnkit explain gradients --depth 32 --steps 100 --figure gradients.png
    cnnkit explain gradients --model plain_deep --model residual_deep --batch-norm --json

A sub-command of ``cnnkit explain`` (added by :mod:`cnnkit.cli.explain_cmd`), kept in its own module: a thin layer
over :mod:`cnnkit.training.gradient_flow` and :mod:`cnnkit.visualize.gradient_flow`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnkit.fileio import json_text


def add_parser(what: Any) -> None:
    """Add ``gradients`` to ``cnnkit explain``'s sub-commands."""
    parser = what.add_parser(
        "gradients", help="the vanishing gradient, measured: gradient norm per layer, plain vs skip connections",
        description="Train a deep plain network and the same network with skip connections for a few steps on real "
        "images and measure ||dL/dW|| of every layer, with the initial weights and after training, on the same "
        "batch: through the plain network the gradient shrinks layer by layer on its way back; the skips carry it to "
        "the first layers. Prints the factor between the first layers' gradients.")
    parser.add_argument("--model", action="append", default=None, metavar="NAME",
                        help="a zoo classifier; give it once per network (default: plain_deep, then residual_deep)")
    parser.add_argument("--data", default="fashion-mnist", metavar="NAME", help="a classification dataset (default fashion-mnist)")
    parser.add_argument("--depth", type=int, default=None, metavar="N",
                        help="weighted layers, 6n + 2, for models with a depth option (default theirs: 20)")
    parser.add_argument("--batch-norm", action="store_true", help="batch norm after every convolution (the other cure)")
    parser.add_argument("--steps", type=int, default=50, metavar="N", help="SGD steps between the measurements (default 50)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per step (default 64)")
    parser.add_argument("--images", type=int, default=3200, metavar="N", help="training images drawn (default 3200)")
    parser.add_argument("--measure-images", type=int, default=256, metavar="N",
                        help="the fixed batch the gradients are measured on (default 256)")
    parser.add_argument("--lr", type=float, default=0.02, metavar="LR", help="SGD learning rate (default 0.02; momentum 0.9)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="weights, images and batch order (default 0)")
    parser.add_argument("--figure", default=None, metavar="PNG", help="also draw the curves into this PNG file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from cnnkit.training.gradient_flow import GradientFlowConfig, measure, model_names, render

    if args.depth is not None and (args.depth < 8 or (args.depth - 2) % 6):
        raise ValueError(f"--depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, ...). Received: --depth {args.depth}")
    if args.figure is not None and not args.figure.lower().endswith(".png"):
        raise ValueError(f"--figure must name a .png file. Received: --figure {args.figure}")
    if args.figure is not None and not Path(args.figure).parent.is_dir():
        raise ValueError(f"--figure: the folder {str(Path(args.figure).parent)!r} does not exist. "
                         f"Received: --figure {args.figure}")
    config = GradientFlowConfig(models=model_names(args.model), data=args.data, depth=args.depth,
                                batch_norm=args.batch_norm, steps=args.steps, batch_size=args.batch_size,
                                images=args.images, measure_images=args.measure_images, lr=args.lr, seed=args.seed)
    result = measure(config)
    output = result.as_dict()
    if args.figure is not None:
        from cnnkit.visualize.gradient_flow import draw_gradient_flow

        output["figure"] = str(draw_gradient_flow(result, args.figure))
    if args.json:
        print(json_text(output))
    else:
        print(render(result))
        if args.figure is not None:
            print(f"figure: {output['figure']}")
    return 0
