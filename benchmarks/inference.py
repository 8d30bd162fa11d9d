"""Inference images/s: eager PyTorch (fp32 and bf16) against ONNX Runtime on the file ``cnnkit.export`` writes.

Each model is exported with :func:`cnnkit.export.export_model` (which checks
the file against PyTorch), then the same random batch goes through eager
PyTorch under ``torch.no_grad()`` and through an ONNX Runtime session with as
many threads as torch uses; the runs alternate ``--repeats`` times::

    python benchmarks/inference.py [--models lenet5,fastnet,resnet18] [--batch-size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import common
import torch
from throughput import DEFAULT_SHAPES, build

from cnnkit.export import export_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,fastnet,resnet18", help="comma-separated zoo names")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in [n for n in args.models.split(",") if n]:
            shape = DEFAULT_SHAPES.get(name, (3, 32, 32))
            torch.manual_seed(0)
            model = build(name, shape).eval()
            exported = export_model(model, shape, Path(folder) / f"{name}.onnx", "onnx")
            session = onnxruntime.InferenceSession(str(exported.path), options, providers=["CPUExecutionProvider"])
            x = torch.randn(args.batch_size, *shape)
            feed = {"images": x.numpy()}

            def eager(dtype: torch.dtype | None, model: torch.nn.Module = model, x: torch.Tensor = x) -> int:
                with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    for _ in range(args.batches):
                        model(x)
                return args.batches * len(x)

            def ort(session: onnxruntime.InferenceSession = session, feed: dict[str, object] = feed) -> int:
                for _ in range(args.batches):
                    session.run(None, feed)
                return args.batches * args.batch_size

            runs = {"eager_fp32": lambda: eager(None), "eager_bf16": lambda: eager(torch.bfloat16), "onnxruntime": ort}
            for run in runs.values():
                run()  # warm-up
            rates = common.interleaved(runs, args.repeats)
            row = {"model": name, "input": list(shape), "batch": args.batch_size,
                   "max_abs_diff": exported.max_abs_diff,
                   **{f"{k}_images_per_second": round(statistics.median(v), 1) for k, v in rates.items()}}
            row["onnxruntime_over_eager_fp32"] = round(row["onnxruntime_images_per_second"]
                                                       / row["eager_fp32_images_per_second"], 2)
            rows.append(row)
            print(f"{name:12s} eager fp32 {row['eager_fp32_images_per_second']:9,.0f}  eager bf16 "
                  f"{row['eager_bf16_images_per_second']:9,.0f}  onnxruntime {row['onnxruntime_images_per_second']:9,.0f}"
                  f" img/s", flush=True)
    headline = "; ".join(f"{r['model']} ORT {r['onnxruntime_images_per_second']:,.0f} vs eager fp32 "
                         f"{r['eager_fp32_images_per_second']:,.0f} / bf16 {r['eager_bf16_images_per_second']:,.0f} img/s"
                         for r in rows)
    common.record("inference", headline, {"rows": rows}, doc)


if __name__ == "__main__":
    main()
