"""``cnnkit explore RUN_OR_MODEL``: the interactive explainer in a browser, or ``--static`` as one HTML file."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="A local web page that shows a network at work on an image: the prepared input, the class "
                    "probabilities, every layer's feature maps, and, for any pixel you click, the computation that "
                    "produced it (window, kernel, sums, bias, activation); Grad-CAM, saliency and the learnt filters.",
        epilog="examples:\n  cnnkit explore runs/lenet5-fashion-mnist-...\n"
               "  cnnkit explore efficientnet_lite0 --pretrained --images photos/\n"
               "  cnnkit explore lenet5-run --static lenet.html --image shoe.png --image shirt.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", metavar="RUN_OR_MODEL",
                        help="a run directory, a layer-table file, a shipped table or a zoo model (cnnkit models)")
    parser.add_argument("--pretrained", action="store_true", help="a zoo model's pretrained weights (efficientnet_lite0)")
    parser.add_argument("--images", metavar="DIR", help="a folder of image files to pick from (besides the run's "
                                                        "held-out images)")
    parser.add_argument("--port", type=int, default=8765, help="port to serve on (default 8765)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; another one is warned about)")
    parser.add_argument("--static", metavar="PAGE.html", help="write a self-contained page for the --image files "
                                                              "instead of serving (no server, no network needed)")
    parser.add_argument("--image", action="append", default=[], metavar="FILE",
                        help="an image for --static (repeat for several)")
    parser.add_argument("--quiet", action="store_true", help="no request log")


def run(args: argparse.Namespace) -> int:
    from cnnkit.explore.session import Explorer

    if args.image and not args.static:
        raise ValueError("--image is for --static pages; the served page picks images itself (use --images DIR)")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1 to 65535. Received: {args.port}")
    if args.static:
        from pathlib import Path

        from cnnkit.explore.static import write_static

        if not args.image:
            raise ValueError("--static needs at least one --image FILE")
        explorer = Explorer.open(args.target, pretrained=args.pretrained, samples=0)
        path = write_static(explorer, args.image, Path(args.static))
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): open it in a browser, no server needed")
        return 0
    from cnnkit.explore.app import serve

    explorer = Explorer.open(args.target, pretrained=args.pretrained, images=args.images)
    with contextlib.suppress(KeyboardInterrupt):
        serve(explorer, args.host, args.port, quiet=args.quiet)
    return 0
