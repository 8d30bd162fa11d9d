"""Forward time of ``cnnkit.reference.conv2d`` against ``torch.nn.functional.conv2d`` on the same float64 input.

Prints JSON: per size, the median time of each over ``--repeats`` runs and the
ratio reference/torch (how many times slower the NumPy reference is), plus the
largest difference between the two outputs::

    python benchmarks/reference_vs_torch.py [--repeats 20] [--threads 1] [--no-record]

``--threads`` sets torch's intra-op threads and, when threadpoolctl is
installed (it comes with scikit-learn), NumPy's BLAS threads, so both sides
compute with the same number of cores.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import common
import numpy as np
import torch
import torch.nn.functional as F

from cnnkit import reference as R

Padding = int | Literal["same"]

# (N, C_in, H, W), (C_out, kernel, stride, padding, groups): from LeNet's first layer to a ResNet-like block
SIZES: list[tuple[tuple[int, int, int, int], tuple[int, int, int, Padding, int]]] = [
    ((32, 1, 16, 16), (6, 5, 1, 2, 1)),
    ((32, 6, 8, 8), (16, 5, 1, 0, 1)),
    ((16, 16, 32, 32), (32, 3, 1, 1, 1)),
    ((8, 64, 28, 28), (64, 3, 1, "same", 1)),
    ((8, 64, 56, 56), (128, 3, 2, 1, 1)),
    ((8, 64, 28, 28), (64, 3, 1, 1, 64)),  # depthwise
]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


@contextlib.contextmanager
def blas_threads(threads: int) -> Iterator[str]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield "default (threadpoolctl not installed)"
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield str(threads)


def measure(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: Padding, groups: int, repeats: int) -> dict[str, Any]:
    tx, tw, tb = torch.tensor(x), torch.tensor(w), torch.tensor(b)
    reference_ms = median_ms(lambda: R.conv2d(x, w, b, stride, padding, 1, groups), repeats)
    torch_ms = median_ms(lambda: F.conv2d(tx, tw, tb, stride, padding, 1, groups), repeats)
    expected = F.conv2d(tx, tw, tb, stride, padding, 1, groups).numpy()
    return {
        "input": list(x.shape),
        "weight": list(w.shape),
        "stride": stride,
        "padding": padding,
        "groups": groups,
        "reference_ms": round(reference_ms, 3),
        "torch_ms": round(torch_ms, 3),
        "ratio": round(reference_ms / torch_ms, 2),
        "max_abs_diff": float(np.abs(R.conv2d(x, w, b, stride, padding, 1, groups) - expected).max()),
    }


def run(repeats: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    with blas_threads(threads) as blas:
        results = [
            measure(
                rng.standard_normal(shape), rng.standard_normal((c_out, shape[1] // groups, k, k)), rng.standard_normal(c_out),
                stride, padding, groups, repeats,
            )
            for shape, (c_out, k, stride, padding, groups) in SIZES
        ]
    return {
        "op": "conv2d forward",
        "dtype": "float64",
        "threads": {"torch": torch.get_num_threads(), "blas": blas},
        "repeats": repeats,
        "versions": {"numpy": np.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per size; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and for NumPy's BLAS")
    parser.add_argument("--no-record", action="store_true", help="print JSON only; do not append to docs/benchmarks.md")
    args = parser.parse_args()
    result = run(args.repeats, args.threads)
    ratios = [r["ratio"] for r in result["results"]]
    worst = max(r["max_abs_diff"] for r in result["results"])
    common.record("NumPy reference vs torch", f"conv2d forward, float64, {args.threads} thread(s): reference "
                  f"{min(ratios):.0f}x to {max(ratios):.0f}x slower than torch, largest difference {worst:.1e}",
                  result, None if args.no_record else common.DOC)


if __name__ == "__main__":
    main()
