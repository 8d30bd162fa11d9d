"""``cnnkit predict RUN IMAGE...`` or ``cnnkit predict --model NAME --pretrained IMAGE...``: classes of image files,
or, for a segment, reconstruct or denoise run, the masks and images its network makes of them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Classify image files with a trained run (its classes and preprocessing) or with a pretrained "
                    "zoo model: each image is converted to grey or RGB, resized and normalised as the network "
                    "expects, and the top classes are printed with their probabilities. A segmentation run writes "
                    "NAME.mask.png (class ids) and NAME.overlay.png, a denoising run NAME.denoised.png, a "
                    "reconstruction run NAME.reconstructed.png, a localize, detect or instance run NAME.boxes.png (the "
                    "image with each object's box and class; instance: NAME.mask<k>.png, each object's mask) and each "
                    "box in the image's own pixels. An unreadable image "
                    "is reported and the others are still done (exit status 2).",
        epilog="examples:\n  cnnkit predict runs/lenet5-fashion-mnist-20261121-120000 shirt.png\n"
               "  cnnkit predict --model efficientnet_lite0 --pretrained cat.png\n"
               "  cnnkit predict --pretrained *.jpg --top 3 --json\n"
               "  cnnkit predict --pretrained cat.png --task localize   # a box from the class activation map\n"
               "  cnnkit predict runs/unet-shapes-seg-20261121-120000 scene.png --out masks/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", metavar="[RUN] IMAGE",
                        help="a run directory of `cnnkit train` (unless --pretrained), then image files (PNG, JPEG, ...) or "
                             "folders (every image in them)")
    parser.add_argument("--model", default="efficientnet_lite0", help="zoo model with pretrained weights (default efficientnet_lite0)")
    parser.add_argument("--pretrained", action="store_true",
                        help="use the model's pretrained weights (required: a freshly initialised model predicts noise)")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to show per image (default 5)")
    parser.add_argument("--out", metavar="DIR", help="segment, reconstruct, denoise, localize and detect: where to "
                        "write the output images (default: beside each image)")
    parser.add_argument("--task", choices=("classify", "localize"), default="classify",
                        help="with --pretrained: classify (the top classes, the default) or localize (a box around "
                             "the top class's object from its class activation map, CAM localisation; NAME.boxes.png)")
    parser.add_argument("--class", dest="target", metavar="CLASS", default=None,
                        help="--task localize: box this class (index or name) instead of the top one")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnkit.images import expand_folders
    from cnnkit.inference import localize_pretrained, predict, predict_run
    from cnnkit.runs import Run
    from cnnkit.tasks.outputs import ImageObjects, ImageOutput, ImagePrediction

    if args.target is not None and args.task != "localize":
        raise ValueError(f"--class chooses the class that --task localize boxes. Received: --class {args.target!r} "
                         f"with --task {args.task}")
    if args.pretrained and args.task == "localize":
        return _print_outputs(args, localize_pretrained(expand_folders(args.images), args.model, args.target,
                                                        args.out))
    if args.pretrained:
        results: list[Any] = predict(expand_folders(args.images), model=args.model, top=args.top)
        title = f"{args.model} (pretrained)"
    else:
        if args.task != "classify":
            raise ValueError(f"--task {args.task} is for --pretrained models; a run predicts with its own task. "
                             f"Received: --task {args.task} without --pretrained")
        run_dir = Path(args.images[0])
        if not Run.is_run(run_dir) or len(args.images) < 2:
            raise ValueError(
                "`cnnkit predict` needs a trained run and images (cnnkit predict RUN IMAGE...) or a pretrained zoo "
                f"model (cnnkit predict --model NAME --pretrained IMAGE...). Received: {args.images[0]} "
                f"{'is not a run directory' if not Run.is_run(run_dir) else 'and no image'}"
            )
        results = predict_run(run_dir, expand_folders(args.images[1:]), top=args.top, out=args.out)
        title = f"{run_dir.name}"
        if any(isinstance(r, ImageOutput | ImageObjects) for r in results):
            return _print_outputs(args, results)
    assert all(isinstance(r, ImagePrediction) for r in results)
    failed = [r for r in results if r.error is not None]
    if args.json:
        print(json_text({"predictions": [r.as_dict() for r in results]}))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column, justify in (("file", "left"), ("#", "right"), ("class", "right"), ("name", "left"), ("probability", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for result in results:
            for rank, score in enumerate(result.top, start=1):
                table.add_row(result.file if rank == 1 else "", str(rank), str(score.index), score.name, f"{score.prob:.4f}",
                              end_section=rank == len(result.top))
        if len(failed) < len(results):
            # a pipe has no width: let the table be as wide as it needs instead of cutting names at 80 columns
            Console(width=None if sys.stdout.isatty() else 200).print(table)
    for result in failed:
        print(f"cnnkit: error: {result.error}", file=sys.stderr)
    return 2 if failed else 0


def _print_outputs(args: argparse.Namespace, results: list[Any]) -> int:
    """A segment, reconstruct, denoise, localize or detect run wrote its output images: say where they went (and
    what objects were found, box corners x0, y0, x1, y1 in the image's pixels)."""
    from cnnkit.tasks.outputs import ImageObjects

    failed = [r for r in results if r.error is not None]
    if args.json:
        print(json_text({"predictions": [r.as_dict() for r in results]}))
    else:
        for result in results:
            if result.error is not None:
                continue
            written = ", ".join(f"{path} ({kind})" for kind, path in result.outputs.items())
            if isinstance(result, ImageObjects):
                found = "; ".join(f"{name} {score:.2f} at ({', '.join(f'{v:g}' for v in box)})"
                                  for _, name, score, box in result.objects) or "no object"
                print(f"{result.file} -> {written}: {found}")
                continue
            classes = ", ".join(f"{name} {share:.1%}" for _, name, share in result.classes)
            print(f"{result.file} -> {written}" + (f": {classes}" if classes else ""))
    for result in failed:
        print(f"cnnkit: error: {result.error}", file=sys.stderr)
    return 2 if failed else 0
