"""``cnnkit visualize KIND RUN_OR_MODEL``: filters, feature maps, Grad-CAM, saliency, curves, layer names.

A thin layer over :mod:`cnnkit.visualize`: resolve the network, draw one
figure, print where it went (or, with ``--json``, what was drawn).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnkit.fileio import json_text

KINDS = {
    "filters": "the learnt filters of a convolution layer (default: the first)",
    "feature-maps": "what chosen layers output for an image (default: an early, a middle and a late convolution)",
    "gradcam": "Grad-CAM heat map: where the network found evidence for a class",
    "saliency": "input-gradient saliency: which pixels move the class score most",
    "curves": "loss, accuracy and learning rate per epoch of a run (metrics.jsonl)",
    "layers": "the layer names of a network, with their output shapes (for --layer / --layers)",
}
TARGET_HELP = ("a run directory of `cnnkit train`, a zoo model (`cnnkit models`; with --pretrained its "
               "pretrained weights), or a layer-table file")


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Draw what a CNN sees, for a trained run, a zoo model or a layer table: learnt filters, "
                    "feature maps of an image, Grad-CAM and saliency heat maps, training curves. Layers are named "
                    "as PyTorch names them (print(model)); `cnnkit visualize layers TARGET` lists them.",
        epilog="examples:\n  cnnkit visualize filters runs/lenet5-fashion-mnist-20261121-120000\n"
               "  cnnkit visualize feature-maps efficientnet_lite0 --pretrained --image cat.png\n"
               "  cnnkit visualize gradcam efficientnet_lite0 --pretrained --image cat.png --out cat_cam.png\n"
               "  cnnkit visualize gradcam RUN --image shirt.png --class Shirt --json\n"
               "  cnnkit visualize curves RUN",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, kind_help in KINDS.items():
        sub = kinds.add_parser(kind, help=kind_help, description=kind_help[0].upper() + kind_help[1:] + ".")
        if kind == "curves":
            sub.add_argument("target", metavar="RUN", help="a run directory of `cnnkit train`")
        else:
            sub.add_argument("target", metavar="RUN_OR_MODEL", help=TARGET_HELP)
            sub.add_argument("--pretrained", action="store_true", help="a zoo model with its pretrained weights")
        if kind in ("feature-maps", "gradcam", "saliency"):
            sub.add_argument("--image", required=True, metavar="IMG", help="the image file (PNG, JPEG, ...)")
        if kind in ("gradcam", "saliency"):
            sub.add_argument("--class", dest="target_class", metavar="C",
                             help="the class to explain: an index or a class name (default: the predicted one)")
        if kind in ("filters", "gradcam"):
            sub.add_argument("--layer", metavar="NAME", help="the layer (default: " + (
                "the first convolution)" if kind == "filters" else "the last convolution block's output)"))
        if kind == "feature-maps":
            sub.add_argument("--layers", nargs="+", metavar="NAME",
                             help="the layers, in order (default: an early, a middle and a late convolution)")
            sub.add_argument("--channels", type=int, default=8, metavar="N", help="maps per layer (default 8)")
        if kind != "layers":
            sub.add_argument("--out", metavar="F.png", help="where to write the figure (default: "
                             "<name>-<kind>[-<image>].png in the current folder)")
        sub.add_argument("--json", action="store_true", help="print what was drawn as JSON")


def _out(args: argparse.Namespace, name: str) -> Path:
    if args.out:
        return Path(args.out)
    image = f"-{Path(args.image).stem}" if getattr(args, "image", None) else ""
    return Path(f"{name}-{args.kind}{image}.png")


def _report(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> int:
    if args.json:
        print(json_text(data))
    else:
        print("\n".join(lines))
    return 0


def _curves(args: argparse.Namespace) -> int:
    from cnnkit.visualize import draw_curves, read_history

    run = Path(args.target)
    history = read_history(run)
    path = draw_curves(history, _out(args, run.resolve().name), title=f"Training curves: {run.resolve().name}")
    return _report(args, {"files": [str(path)], "epochs": len(history)}, [f"wrote {path} ({len(history)} epochs)"])


def _layers(args: argparse.Namespace, subject: Any) -> int:
    import torch

    from cnnkit.visualize import default_layers, gradcam_layer, run

    with torch.no_grad():
        hooked = run(subject.model, torch.zeros((1, *subject.prep.input_shape)))
    calls = hooked.calls
    defaults = {name: "feature-maps" for name in default_layers(calls)} if any(c.spatial for c in calls) else {}
    try:
        cam_layer = gradcam_layer(hooked.sequence)
        defaults[cam_layer] = (defaults.get(cam_layer, "") + " gradcam").strip()
    except ValueError:
        pass  # a network without convolutions has no Grad-CAM default; the list is still useful
    if args.json:
        rows = [{"name": c.name, "kind": c.kind, "output_shape": list(c.output_shape) if c.output_shape else None,
                 "maps": c.spatial, "default_for": defaults.get(c.name, "")} for c in calls]
        print(json_text({"layers": rows}))
        return 0
    width = max((len(c.name) for c in calls), default=5)
    print(f"{'layer'.ljust(width)}  {'type':<18} {'output':<14} default for")
    for c in calls:
        shape = "x".join(map(str, c.output_shape)) if c.output_shape else "-"
        print(f"{c.name.ljust(width)}  {c.kind:<18} {shape:<14} {defaults.get(c.name, '')}".rstrip())
    return 0


UNTRAINED = "untrained (random weights)"


def _untrained_note(subject: Any) -> list[str]:
    """What to say under a figure of a network with random weights: it has learnt nothing, and how to get one that has."""
    if subject.pretrained:
        return []
    from cnnkit import models

    has_weights = subject.kind == "zoo" and models.info(subject.name).weights is not None
    better = "--pretrained (its pretrained weights)" if has_weights else \
        "a trained run (cnnkit train) or a zoo model with --pretrained"
    return [f"note: {subject.name} is {UNTRAINED}: its filters and maps show no learnt features; give {better}"]


def run(args: argparse.Namespace) -> int:
    if args.kind == "curves":
        return _curves(args)
    from cnnkit.visualize import (
        class_index,
        draw_attribution,
        draw_feature_maps,
        draw_filters,
        feature_maps,
        gradcam,
        resolve,
        saliency,
    )

    subject = resolve(args.target, pretrained=args.pretrained)
    names = subject.class_names
    if args.kind == "layers":
        return _layers(args, subject)
    untrained = "" if subject.pretrained else UNTRAINED
    if args.kind == "filters":
        heading = f"Filters of {subject.name}, {UNTRAINED}: drawn at random, not learnt" if untrained else None
        drawn = draw_filters(subject.model, _out(args, subject.name), args.layer, title=heading)
        return _report(args, drawn.as_dict(), [f"wrote {drawn.path}: {drawn.layer} ({drawn.kind}), "
                                               f"{drawn.shape[0]} filters of {'x'.join(map(str, drawn.shape[1:]))}",
                                               *_untrained_note(subject)])
    x, picture = subject.load(args.image)
    weights = " (pretrained)" if subject.kind == "zoo" and subject.pretrained else f", {untrained}" if untrained else ""
    title = f"{subject.name}{weights}, {Path(args.image).name}"
    if args.kind == "feature-maps":
        maps = feature_maps(subject.model, x, args.layers)
        figure = draw_feature_maps(maps, picture, _out(args, subject.name), per_layer=args.channels,
                                   title=f"Feature maps: {title}")
        shapes = ", ".join(f"{row['layer']} {'x'.join(map(str, row['shape']))}" for row in figure.layers)
        return _report(args, figure.as_dict(), [f"wrote {figure.path}: {shapes}", *_untrained_note(subject)])
    target = class_index(args.target_class, names) if args.target_class is not None else None
    result = gradcam(subject.model, x, target, args.layer) if args.kind == "gradcam" else saliency(subject.model, x, target)
    path = draw_attribution(result, picture, _out(args, subject.name), names, title=title)
    data = {"files": [str(path)], **result.as_dict(names)}
    label = f"{result.target} {names[result.target]!r}" if result.target < len(names) else str(result.target)
    where = f" at layer {result.layer} ({result.grid[0]}x{result.grid[1]})" if result.grid else ""
    return _report(args, data, [f"wrote {path}: {result.method} of class {label} (p = {result.probability:.1%}){where}, "
                                f"peak at x={result.peak[0]}, y={result.peak[1]} of the {x.shape[3]}x{x.shape[2]} input",
                                *_untrained_note(subject)])
