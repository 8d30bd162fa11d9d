"""Training throughput per model in fp32, bf16, channels-last and torch.compile, with the model FLOP utilisation.

For each model and mode, one training step (forward, cross-entropy,
backward, SGD step) on a random batch is timed over ``--steps`` steps after a
warm-up (for ``compile`` the warm-up is the compilation, reported apart).
Achieved FLOP/s counts 6 FLOPs per multiply-accumulate of the forward pass
(``cnnkit.summarize``'s MAC count: 2 for the forward, 4 for the backward).
MFU divides it by the machine's matrix-multiply peak in the same dtype,
measured in the same process with the same threads (the best of several
square ``torch.mm`` products), so it says how much of what this machine can
do the model uses::

    python benchmarks/throughput.py [--models lenet5,vgg_small,resnet_small,fastnet,resnet18] [--modes fp32,bf16,bf16+cl,bf16+compile]

On CUDA, ``--models resnet50 --size 224 --modes bf16+cl`` gives ResNet-50 training
images/s at 224x224 with AMP (published for an H100: about 2,600-2,800 images/s).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import common
import torch
import torch.nn.functional as F

from cnnkit import models
from cnnkit.summarize import summary

# (in_channels, H, W) each model is measured at: Fashion-MNIST for the small nets, CIFAR-sized for ResNet-18
DEFAULT_SHAPES: dict[str, tuple[int, int, int]] = {"lenet5": (1, 28, 28), "vgg_small": (1, 28, 28),
                                                   "resnet_small": (1, 28, 28), "fastnet": (1, 28, 28),
                                                   "resnet18": (3, 32, 32)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of ``size x size`` matrix products in ``dtype`` on ``device``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)
    sync(device)
    best = 0.0
    for _ in range(repeats):
        start = common.CLOCK()
        for _ in range(4):
            torch.mm(a, b)
        sync(device)
        best = max(best, 4 * 2 * size**3 / (common.CLOCK() - start))
    return best


def build(name: str, shape: tuple[int, int, int], num_classes: int = 10) -> torch.nn.Module:
    info = models.info(name)
    options: dict[str, Any] = {"input_size": shape[1:]} if "input_size" in info.options else {}
    return models.create(name, num_classes=num_classes, in_channels=shape[0], **options)


def measure(name: str, shape: tuple[int, int, int], mode: str, batch: int, steps: int,
            device: torch.device) -> dict[str, Any]:
    """Images/s of training steps of ``name`` in ``mode`` (precision, +cl, +compile)."""
    precision, *extras = mode.split("+")
    torch.manual_seed(0)
    model = build(name, shape).to(device).train()
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if "cl" in extras:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if "compile" in extras else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    autocast = torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32")

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(forward(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    start = time.perf_counter()  # wall time: compilation runs the C++ compiler in other processes
    for _ in range(3):
        step()
    sync(device)
    warmup = time.perf_counter() - start
    start = common.CLOCK()
    for _ in range(steps):
        step()
    sync(device)
    rate = steps * batch / (common.CLOCK() - start)
    macs = summary(build(name, shape), shape).total_macs
    return {"model": name, "input": list(shape), "mode": mode, "batch": batch, "images_per_second": round(rate, 1),
            "warmup_seconds": round(warmup, 2), "forward_macs_per_image": macs,
            "achieved_flops": 6 * macs * rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_SHAPES), help="comma-separated zoo names")
    parser.add_argument("--size", type=int, default=None, help="measure every model at this square size (3 channels)")
    parser.add_argument("--modes", default="fp32,bf16,bf16+cl,bf16+compile",
                        help="precision fp32/bf16/fp16, + cl (channels-last), + compile (torch.compile)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model and mode")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    modes = [m for m in args.modes.split(",") if m]
    size = 8192 if device.type == "cuda" else 2048  # a GPU needs bigger products to reach its peak
    peaks = {p: matmul_peak(DTYPES[p], device, size) for p in sorted({m.split("+")[0] for m in modes})}
    rows = []
    for name in [n for n in args.models.split(",") if n]:
        shape = (3, args.size, args.size) if args.size else DEFAULT_SHAPES.get(name, models.info(name).input_shape)
        for mode in modes:
            row = measure(name, shape, mode, args.batch_size, args.steps, device)
            row["mfu"] = round(row["achieved_flops"] / peaks[mode.split("+")[0]], 4)
            row["achieved_flops"] = round(row["achieved_flops"] / 1e9, 2)  # GFLOP/s
            rows.append(row)
            print(f"{name:14s} {mode:14s} {row['images_per_second']:10,.0f} img/s  {row['achieved_flops']:8.1f} "
                  f"GFLOP/s  MFU {row['mfu']:.1%}  (warm-up {row['warmup_seconds']} s)", flush=True)
    headline = "; ".join(f"{r['model']} {r['mode']} {r['images_per_second']:,.0f} img/s (MFU {r['mfu']:.1%})"
                         for r in rows)
    common.record("training throughput", headline, {"device": device.type, "peak_gflops": {
        k: round(v / 1e9, 1) for k, v in peaks.items()}, "achieved_flops_unit": "GFLOP/s", "rows": rows}, doc)


if __name__ == "__main__":
    main()
