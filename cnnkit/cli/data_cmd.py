"""``cnnkit data pack folder:PATH --out DIR`` (or ``coco:PATH``): decode an image, segmentation or COCO folder once into
a pack that trains without decoding."""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Work with datasets. `pack` decodes a class-folder tree, a segmentation folder (images/ + masks/) "
                    "or a COCO folder once (the same decoding as folder: and coco:) into fixed-size uint8 arrays, "
                    "with the class maps or objects beside the images, and a manifest; `--data packed:DIR` then "
                    "trains from it without decoding, reading images on demand (a pack larger than memory trains too).",
        epilog="examples:\n  cnnkit data pack folder:photos --image-size 128 --out photos.cnnkit\n"
               "  cnnkit train --data packed:photos.cnnkit --model resnet_small\n"
               "  cnnkit data pack coco:boxes --image-size 64 --out boxes.cnnkit\n"
               "  cnnkit train --task detect --data packed:boxes.cnnkit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_subparsers(dest="what", metavar="ACTION", required=True)
    pack = what.add_parser("pack", help="decode folder:PATH or coco:PATH once into a pack (DIR)",
                           description="Decode every image of folder:PATH or coco:PATH into DIR (manifest.json, "
                                       "source.json, SPLIT.images, SPLIT.labels.npy; SPLIT.segmentation for a "
                                       "segmentation folder, SPLIT.object_boxes, _classes and _masks for COCO).")
    pack.add_argument("data", metavar="folder:PATH|coco:PATH")
    pack.add_argument("--out", required=True, metavar="DIR", help="the pack's folder (e.g. photos.cnnkit)")
    pack.add_argument("--image-size", type=int, default=None, metavar="N",
                      help="square size (default: 64 for folder:, the images' own for coco:)")
    pack.add_argument("--grayscale", action=argparse.BooleanOptionalAction, default=None,
                      help="force one channel (or, with --no-grayscale, three); default: grey when every image is")
    pack.add_argument("--skip-bad-images", action="store_true", help="leave out files that do not decode")


def run(args: argparse.Namespace) -> int:
    from cnnkit.data.packed import pack, read_manifest

    if args.image_size is not None and args.image_size < 1:
        raise ValueError(f"--image-size must be a positive number of pixels. Received: {args.image_size}")
    start = time.perf_counter()
    out = pack(args.data, args.out, args.image_size, args.grayscale, args.skip_bad_images)
    manifest = read_manifest(out)  # counts from the manifest: reading the pack would cut a single COCO set
    counts = ", ".join(f"{name} {info['count']:,}" for name, info in manifest["splits"].items())
    held = f" ({manifest['test_split']:.0%} held out as test when read)" if manifest.get("test_split") else ""
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"packed {args.data} into {out}: {counts} images{held} of {'x'.join(map(str, manifest['input_shape']))}, "
          f"{len(manifest['class_names'])} classes, {size / 1e6:.1f} MB, in {time.perf_counter() - start:.1f} s; "
          f"train with --data packed:{out}")
    return 0
