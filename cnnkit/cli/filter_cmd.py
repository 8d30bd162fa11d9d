"""``cnnkit filter``: a classic kernel (Sobel, Laplacian, blur ...), or one written out, applied to a photograph.

    cnnkit filter --list
    cnnkit filter photo.jpg --kernel sobel-x --out edges.png
    cnnkit filter photo.jpg --kernel gaussian-blur-5x5 --per-channel --out soft.png --json
    cnnkit filter photo.jpg --kernel "1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9" --out blur.png
    cnnkit filter photo.jpg --kernel sobel-x --figure sobel.png      # input | kernel | output, side by side

A thin layer over :func:`cnnkit.filters.filter_image`.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description="Filter an image with a named classic kernel (every kernel the lecture decks show among them), or "
        "one written out, using torch conv2d (cross-correlation, 'same' size). The response is scaled for display: 'abs' "
        "(edge strength |r|, scaled so the strongest is white) for kernels whose weights sum to 0, 'clip' (0-255) for "
        "those summing to 1 (blurs, sharpen, identity), 'minmax' for the rest; --scale overrides.",
    )
    parser.add_argument("image", nargs="?", metavar="IMAGE", help="a PNG, JPEG, BMP, GIF, TIFF or WebP file")
    parser.add_argument("--list", action="store_true", help="list the kernels and exit")
    parser.add_argument("--kernel", metavar="K", help="a kernel's name (see --list), or the kernel written out: "
                        '"1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9", JSON, or a .json/.csv/.npy file')
    parser.add_argument("--out", metavar="PNG", help="write the filtered image here (atomically); without it only the summary prints")
    parser.add_argument("--figure", metavar="FILE", help="also draw input | kernel | output side by side into FILE, PNG or "
                        "SVG by its suffix (atomically)")
    channels = parser.add_mutually_exclusive_group()
    channels.add_argument("--grey", action="store_true", help="filter the grey levels (the default)")
    channels.add_argument("--per-channel", action="store_true", help="filter R, G and B each on its own")
    parser.add_argument("--padding", choices=("reflect", "zeros"), default="reflect",
                        help="how the border is extended for 'same' size: mirrored ('reflect', default) or zeros")
    parser.add_argument("--scale", choices=("auto", "abs", "minmax", "clip"), default="auto",
                        help="response to grey levels: abs (|r|/max|r|), minmax, clip (0-255), or auto (default: abs for "
                        "weights summing to 0, clip for 1, else minmax)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def run(args: argparse.Namespace) -> int:
    # imported here so that `cnnkit --help` does not import torch
    from cnnkit import filters

    if args.list:
        rows = filters.kernel_table()
        if args.json:
            print(json_text(rows))
        else:
            width = max(len(row["name"]) for row in rows)
            for row in rows:
                shown = f" [shown in {'; '.join(row['shown_in'])}]" if row["shown_in"] else ""
                print(f"{row['name'].ljust(width)}  {row['size'][0]}x{row['size'][1]}  {row['description']}{shown}")
        return 0
    if args.image is None or args.kernel is None:
        raise ValueError(f"give an IMAGE and --kernel NAME (or the kernel written out), or --list. "
                         f"Received: image={args.image!r}, kernel={args.kernel!r}")
    if args.figure is not None:
        from cnnkit.explain.panels import check_figure_path

        check_figure_path(args.figure)  # a wrong suffix or a missing folder fails before the work, not after
    result = filters.filter_image(args.image, args.kernel, args.out, per_channel=args.per_channel, padding=args.padding,
                                  scale=args.scale)
    data = result.to_dict()
    if args.figure is not None:
        data["figure"] = str(filters.draw_filter(result, args.figure))
    if args.json:
        print(json_text(data))
        return 0
    r = data["response"]
    print(f"{result.kernel.name} ({result.kernel.description}) on {result.input}, {result.size[0]}x{result.size[1]}, "
          f"{result.channels}, {result.padding} padding")
    print(f"response: min {r['min']:.4g}, max {r['max']:.4g}, mean {r['mean']:.4g}, mean |r| {r['mean_abs']:.4g}; "
          f"shown as {result.scale}")
    print(f"wrote {result.out}" if result.out else "no --out given: nothing written")
    if args.figure is not None:
        print(f"wrote the figure {data['figure']}")
    return 0
