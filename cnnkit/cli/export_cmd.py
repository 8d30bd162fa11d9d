"""``cnnkit export RUN --format onnx|torchscript``: the trained network as a file other runtimes load."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.fileio import json_text


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text,
        description="Export a trained run's network to ONNX (checked with ONNX Runtime) or TorchScript (checked "
                    "with torch.jit.load): the file's outputs must equal PyTorch's within --tolerance. The class "
                    "names, input shape and normalisation are stored in the file.",
        epilog="examples:\n  cnnkit export runs/lenet5-fashion-mnist-20261121-120000 --format onnx\n"
               "  cnnkit export RUN --format torchscript --out deploy/model.pt --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a run directory written by `cnnkit train`")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="(default: onnx)")
    parser.add_argument("--out", metavar="PATH", help="where to write (default: RUN/model.onnx or RUN/model.pt)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest allowed |exported - PyTorch| on a check batch, relative to the largest output "
                             "magnitude (at least 1) (default: 1e-3)")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="do not run the exported file to compare it with PyTorch")
    parser.add_argument("--dynamo", action="store_true", default=None,
                        help="ONNX: use the torch.export-based exporter (needs onnxscript; slower); by default it is "
                             "only the fallback for what the TorchScript-based exporter cannot express")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from cnnkit.export import export

    result = export(args.run, args.format, args.out, check=args.check, tolerance=args.tolerance, dynamo=args.dynamo)
    if args.json:
        print(json_text(result.as_dict()))
        return 0
    print(f"wrote {result.path} ({result.format}, {result.size_bytes / 1e6:.2f} MB, input (N, "
          f"{', '.join(map(str, result.input_shape))}))")
    if result.max_abs_diff is not None:
        print(f"checked with {result.checked_with}: largest difference from PyTorch {result.max_abs_diff:.2e} "
              f"({result.max_rel_diff:.1e} of the output's scale)")
    return 0
