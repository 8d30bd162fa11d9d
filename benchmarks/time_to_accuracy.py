"""Time to accuracy: seconds until ``--recipe fast`` reaches 93.0% Fashion-MNIST test accuracy, and what 120 s reach.

Runs ``cnnkit.training.train(recipe="fast", data="fashion-mnist")`` into a
temporary run directory and reads its per-epoch records: for each target the
first epoch whose test accuracy reaches it, with the seconds since training
began, counted two ways: ``wall`` (training plus the per-epoch evaluations,
what a user waits) and ``train`` (evaluation time left out, as speed-run
records usually count). ``--budget`` reports the best accuracy of an epoch
that ended within that many wall seconds::

    python benchmarks/time_to_accuracy.py [--targets 0.93] [--budget 120] [--set epochs=6 --set device=cuda]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

import common

from cnnkit.training import TrainConfig, train


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--targets", default="0.93", help="comma-separated test accuracies, e.g. 0.93,0.94")
    parser.add_argument("--budget", type=float, default=120.0, help="wall seconds for the 'reached within' figure")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a training option, e.g. --set epochs=8 --set device=cuda (JSON values)")
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.replace("-", "_")] = parse_value(value)
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig.from_dict({"recipe": args.recipe, "data": args.data, **overrides, "out": f"{folder}/run"})
        result = train(config)
    history = result.history
    split = "val" if any("val_accuracy" in r for r in history) else "test"
    eval_so_far, epochs = 0.0, []
    for record in history:
        eval_so_far += record.get("eval_time", 0.0)
        epochs.append({"epoch": record["epoch"], "accuracy": record[f"{split}_accuracy"],
                       "wall_seconds": round(record["time"], 1), "train_seconds": round(record["time"] - eval_so_far, 1)})
    reached: dict[str, Any] = {}
    for target in (float(t) for t in args.targets.split(",") if t):
        first = next((e for e in epochs if e["accuracy"] >= target), None)
        reached[f"{target:.3f}"] = first
    within = [e for e in epochs if e["wall_seconds"] <= args.budget]
    best_within = max((e["accuracy"] for e in within), default=None)
    parts = []
    for target, epoch in reached.items():
        if epoch is None:
            parts.append(f"{float(target):.1%} not reached in {len(epochs)} epochs (best {max(e['accuracy'] for e in epochs):.2%})")
        else:
            parts.append(f"{float(target):.1%} at epoch {epoch['epoch']}: {epoch['wall_seconds']} s wall, "
                         f"{epoch['train_seconds']} s training")
    best = f"{best_within:.2%}" if best_within is not None else "no epoch"
    parts.append(f"{best} within {args.budget:g} s")
    common.record("time to accuracy", f"--recipe {args.recipe} {args.data}: " + "; ".join(parts) + f" ({result.runtime})",
                  {"recipe": args.recipe, "config": config.to_dict(), "runtime": result.runtime, "split": split,
                   "targets": reached, "budget_seconds": args.budget, "best_within_budget": best_within,
                   "epochs": epochs}, doc)


if __name__ == "__main__":
    main()
