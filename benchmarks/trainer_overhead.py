"""Trainer overhead: ``cnnkit.training.fit`` against a minimal hand-written PyTorch loop, as a ratio of images/s.

Same model, data, batch size, optimizer, schedule, loss and precision, in one
process; the two alternate (fit, hand, fit, hand ...) ``--repeats`` times so
that a change in the machine's load hits both, and the median ratio is
reported. The hand loop is what a skilled user writes: the training images
normalised once into one float tensor (inside its timing: it is part of the
run), a ``randperm`` per epoch, slicing, autocast,
``zero_grad(set_to_none=True)``, backward, step, schedule step. ``fit`` does
more per batch (seeded per-batch generators and dropout, the task's running
loss and metric, the non-finite-loss check, the hook points; and, when batches
are augmented, the uint8 -> float normalisation on the fly), and the ratio says
whether that costs anything::

    python benchmarks/trainer_overhead.py [--model lenet5] [--batch-size 32] [--images 32768] [--repeats 7]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
from typing import Any

import common
import torch
import torch.nn.functional as F

from cnnkit.data import BatchTransform, channel_stats
from cnnkit.data import load as load_data
from cnnkit.network import build, describe
from cnnkit.runtime import choose
from cnnkit.tasks import Classify
from cnnkit.training import TrainConfig
from cnnkit.training.loop import fit
from cnnkit.training.optim import make_optimizer, make_scheduler
from cnnkit.training.run import new_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5", help="zoo name (default: lenet5, cnnkit's default model)")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--batch-size", type=int, default=32, help="(default: 32, cnnkit's default)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--images", type=int, default=32768, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=7)
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)

    config = TrainConfig.from_dict({"model": args.model, "data": args.data, "epochs": 1, "batch_size": args.batch_size,
                                    "precision": args.precision, "device": args.device})
    runtime = choose(config.device, config.precision, config.channels_last)
    train = load_data(args.data).train
    images, labels = train.images[: args.images].to(runtime.device), train.labels[: args.images].to(runtime.device)
    shape = tuple(images.shape[1:])
    mean, std = channel_stats(train.images)
    transform = BatchTransform(mean=mean, std=std)
    torch.manual_seed(0)
    initial = build(describe(args.model, shape, len(train.class_names), Classify()), shape).to(runtime.device)
    if runtime.channels_last:
        initial = initial.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format

    def run_fit() -> int:
        state = new_state(copy.deepcopy(initial), config, runtime, len(labels))
        fit(state, (images, labels), None, transform, Classify())
        return len(labels)

    def run_hand() -> int:
        model = copy.deepcopy(initial).train()
        # normalised once per run, as a user who knows the data fits in memory would (fit does the same)
        normalised = transform(images, train=False).contiguous(memory_format=memory_format)
        optimizer = make_optimizer(model, config)
        scheduler = make_scheduler(optimizer, config.lr_schedule(), math.ceil(len(labels) / args.batch_size))
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0)).to(runtime.device)
        for start in range(0, len(labels), args.batch_size):
            index = order[start : start + args.batch_size]
            x, y = normalised[index], labels[index]
            with runtime.autocast():
                loss = F.cross_entropy(model(x).float(), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        return len(labels)

    run_fit(), run_hand()  # warm-up: allocator, kernel choice
    rates = common.interleaved({"fit": run_fit, "hand": run_hand}, args.repeats)
    ratios = [f / h for f, h in zip(rates["fit"], rates["hand"], strict=True)]
    ratio = statistics.median(ratios)
    result: dict[str, Any] = {
        "model": args.model, "data": args.data, "images": len(labels), "batch_size": args.batch_size,
        "runtime": runtime.describe(), "repeats": args.repeats,
        "fit_images_per_second": round(statistics.median(rates["fit"]), 1),
        "hand_images_per_second": round(statistics.median(rates["hand"]), 1),
        "ratio_fit_over_hand": round(ratio, 3), "ratios": [round(r, 3) for r in ratios], "target": ">= 0.97",
    }
    common.record("trainer overhead", f"fit / hand-written loop = {ratio:.3f} ({args.model}, batch "
                  f"{args.batch_size}, {runtime.precision})", result, doc)


if __name__ == "__main__":
    main()
