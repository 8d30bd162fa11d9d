"""cnnkit's defaults against the tutorial loop: training images/s with ``TrainConfig()``'s choices, as a ratio.

The tutorial loop is the one PyTorch's tutorials teach: float32, the images in
a ``TensorDataset`` read through a ``DataLoader(shuffle=True)`` (one
``__getitem__`` per image, then collation). cnnkit's defaults are what
``cnnkit train`` does without flags: precision ``auto`` (bf16 on CPUs with
AVX512-BF16 or AMX, AMP on GPUs) with channels-last, whole batches gathered
from the in-memory uint8 tensor and normalised on the device, the fused
optimizer step. Same model, batch size, optimizer (class and rate), schedule
and loss; the runs alternate ``--repeats`` times, for each model::

    python benchmarks/defaults_vs_tutorial.py [--models lenet5,vgg_small,resnet_small] [--images 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
from collections.abc import Callable
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,vgg_small,resnet_small",
                        help="comma-separated zoo names (default: cnnkit's default model and two small CNNs)")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--images", type=int, default=4096, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
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
