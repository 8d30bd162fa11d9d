"""cnnkit's defaults against the tutorial: whole processes (the default), or the training loop alone.

``--whole-process`` (the default) times what a user waits for: ``cnnkit train --model lenet5 --data fashion-mnist
--epochs 1`` as a command, against ``benchmarks/tutorial_lenet5.py`` (the tutorial script: imports, IDX files,
``DataLoader``, SGD, one epoch, the test set), alternating ``--repeats`` times; each cnnkit run's background
figures finish before the next run starts. It reports both wall times, both test accuracies, the ratio and
cnnkit's own per-phase breakdown (``RUN/timings.json``)::

    python benchmarks/defaults_vs_tutorial.py --whole-process [--repeats 3]

``--loop`` compares the training loops only, in one process:

The tutorial loop is the one PyTorch's tutorials teach: float32, the images in
a ``TensorDataset`` read through a ``DataLoader(shuffle=True)`` (one
``__getitem__`` per image, then collation). cnnkit's defaults are what
``cnnkit train`` does without flags: precision ``auto`` (bf16 on CPUs with
AVX512-BF16 or AMX, AMP on GPUs) with channels-last, whole batches gathered
from the in-memory uint8 tensor and normalised on the device, the fused
optimizer step. Same model, batch size, optimizer (class and rate), schedule
and loss; the runs alternate ``--repeats`` times, for each model::

    python benchmarks/defaults_vs_tutorial.py --loop [--models lenet5,vgg_small,resnet_small] [--images 4096]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from cnnkit.data import BatchTransform, channel_stats
from cnnkit.data import load as load_data
from cnnkit.network import build, describe
from cnnkit.runtime import choose
from cnnkit.tasks import Classify
from cnnkit.training import TrainConfig
from cnnkit.training.loop import fit
from cnnkit.training.optim import make_scheduler
from cnnkit.training.run import new_state

# what a tutorial writes: the optimizer class with its defaults (PyTorch's per-parameter implementation on CPUs)
TUTORIAL_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop}


def compare(model_name: str, data: str, count: int, repeats: int) -> dict[str, Any]:
    """Images/s of cnnkit's defaults and of the tutorial loop for one model, alternating ``repeats`` times."""
    config = TrainConfig.from_dict({"model": model_name, "data": data, "epochs": 1})  # every other default
    runtime = choose(config.device, config.precision, config.channels_last)
    tutorial_device = runtime.device  # the tutorial moves each batch to the same device, in float32
    train = load_data(data).train
    images, labels = train.images[:count], train.labels[:count]
    shape = tuple(images.shape[1:])
    mean, std = channel_stats(train.images)
    transform = BatchTransform(mean=mean, std=std)
    torch.manual_seed(0)
    initial = build(describe(model_name, shape, len(train.class_names), Classify()), shape)
    on_device = (images.to(runtime.device), labels.to(runtime.device))
    loader = DataLoader(TensorDataset(transform(images, train=False), labels), batch_size=config.batch_size,
                        shuffle=True, generator=torch.Generator().manual_seed(0))

    def run_defaults() -> int:
        model = copy.deepcopy(initial).to(runtime.device)
        if runtime.channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        fit(new_state(model, config, runtime, len(labels)), on_device, None, transform, Classify())
        return len(labels)

    def run_tutorial() -> int:
        model = copy.deepcopy(initial).to(tutorial_device).train()
        optimizer = TUTORIAL_OPTIMIZERS[config.optimizer](model.parameters(), lr=config.learning_rate)
        scheduler = make_scheduler(optimizer, config.lr_schedule(), math.ceil(len(labels) / config.batch_size))
        for x, y in loader:
            x, y = x.to(tutorial_device), y.to(tutorial_device)
            loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        if tutorial_device.type == "cuda":
            torch.cuda.synchronize()
        return len(labels)

    run_defaults(), run_tutorial()  # warm-up
    rates = common.interleaved({"defaults": run_defaults, "tutorial": run_tutorial}, repeats)
    ratios = [d / t for d, t in zip(rates["defaults"], rates["tutorial"], strict=True)]
    return {"model": model_name, "images": len(labels), "batch_size": config.batch_size,
            "defaults_runtime": runtime.describe(), "tutorial_runtime": f"{tutorial_device.type} fp32, DataLoader",
            "defaults_images_per_second": round(statistics.median(rates["defaults"]), 1),
            "tutorial_images_per_second": round(statistics.median(rates["tutorial"]), 1),
            "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios]}


def _timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of ``command`` as a process, and its standard output."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def whole_process(repeats: int, epochs: int) -> dict[str, Any]:
    """The tutorial script and ``cnnkit train`` (defaults, one LeNet-5 run), alternating; medians and the ratio."""
    here = Path(__file__).resolve().parent
    cnnkit = [sys.executable, "-m", "cnnkit", "train", "--model", "lenet5", "--data", "fashion-mnist", "--epochs",
              str(epochs), "--json", "--no-wait"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            seconds, out = _timed([sys.executable, str(here / "tutorial_lenet5.py"), "--seed", str(repeat)])
            rows.append({"who": "tutorial", "seconds": round(seconds, 2), "accuracy": json.loads(out)["accuracy"]})
            run = Path(scratch) / f"run{repeat}"
            seconds, out = _timed([*cnnkit, "--out", str(run)])
            result = json.loads(out)
            rows.append({"who": "cnnkit", "seconds": round(seconds, 2),
                         "accuracy": result["evaluation"]["accuracy"], "timings": result["timings"]})
            while (run / "figures.log").exists():  # the background figures: done before the next timed run
                time.sleep(0.5)
            shutil.rmtree(run, ignore_errors=True)
    tutorial = statistics.median(r["seconds"] for r in rows if r["who"] == "tutorial")
    ours = statistics.median(r["seconds"] for r in rows if r["who"] == "cnnkit")
    phases: dict[str, float] = {}
    for row in (r for r in rows if r["who"] == "cnnkit"):
        for name, value in row["timings"]["phases"].items():
            phases.setdefault(name, 0.0)
            phases[name] += value / repeats
    return {"tutorial_seconds": tutorial, "cnnkit_seconds": ours, "ratio": round(tutorial / ours, 3),
            "tutorial_accuracy": statistics.median(r["accuracy"] for r in rows if r["who"] == "tutorial"),
            "cnnkit_accuracy": statistics.median(r["accuracy"] for r in rows if r["who"] == "cnnkit"),
            "cnnkit_phases": {k: round(v, 2) for k, v in phases.items()}, "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", action="store_true", help="compare the training loops only (in one process)")
    parser.add_argument("--epochs", type=int, default=1, help="--whole-process: epochs of each run")
    parser.add_argument("--models", default="lenet5,vgg_small,resnet_small",
                        help="comma-separated zoo names (default: cnnkit's default model and two small CNNs)")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--images", type=int, default=4096, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
    if not args.loop:
        result = whole_process(args.repeats, args.epochs)
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in result["cnnkit_phases"].items())
        common.record("defaults vs tutorial, whole process",
                      f"`cnnkit train --model lenet5 --data fashion-mnist --epochs {args.epochs}` "
                      f"{result['cnnkit_seconds']:.1f} s ({result['cnnkit_accuracy']:.2%}) vs the tutorial script "
                      f"{result['tutorial_seconds']:.1f} s ({result['tutorial_accuracy']:.2%}): ratio "
                      f"{result['ratio']:.2f}; cnnkit's phases: {phases}", {"target": ">= 1.5", **result}, doc)
        return
    rows = []
    for name in [n for n in args.models.split(",") if n]:
        rows.append(compare(name, args.data, args.images, args.repeats))
        print(f"{name:14s} defaults {rows[-1]['defaults_images_per_second']:9,.0f}  tutorial "
              f"{rows[-1]['tutorial_images_per_second']:9,.0f} img/s  ratio {rows[-1]['ratio']:.2f}", flush=True)
    headline = "; ".join(f"{r['model']} {r['ratio']:.2f}" for r in rows)
    common.record("defaults vs tutorial", f"cnnkit defaults / tutorial loop (fp32, DataLoader), batch "
                  f"{rows[0]['batch_size']}: {headline} ({rows[0]['defaults_runtime']})",
                  {"data": args.data, "target": ">= 1.5", "rows": rows}, doc)


if __name__ == "__main__":
    main()
