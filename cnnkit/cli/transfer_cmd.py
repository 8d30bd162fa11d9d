"""``cnnkit transfer``: one transfer strategy into a run directory, or ``cnnkit transfer compare`` of all of them.

Flags are generated from :class:`cnnkit.transfer.TransferConfig`, as ``cnnkit train``'s are from TrainConfig.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import typing
from typing import Any

from cnnkit.cli.train_cmd import _flag_kwargs
from cnnkit.fileio import json_text
from cnnkit.transfer.config import TransferConfig


def _field_comments() -> dict[str, str]:
    """The ``# comment`` after each TransferConfig field: the help text of its flag."""
    try:
        source = inspect.getsource(TransferConfig)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+): .*?#\s*(.+)$", source, re.MULTILINE)}


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text, argument_default=argparse.SUPPRESS,
        description="Reuse a pretrained network for new classes, the slides' three ways: extract (features of the "
                    "frozen base, by default every block's output pooled on a 2x2 grid; a new classifier on them), "
                    "freeze:K (the first K blocks frozen, the rest and a new head trained) or finetune (everything "
                    "trains, the pretrained layers at a small rate, after the head alone). Frozen BatchNorm "
                    "statistics stay frozen. `transfer compare` trains from scratch and with each strategy on the "
                    "same split and reports accuracy, trainable parameters and time.",
        epilog="examples:\n"
               "  cnnkit transfer --base efficientnet_lite0 --data fashion-mnist --strategy extract --train-per-class 100\n"
               "  cnnkit transfer --base runs/fashion04 --data fashion-mnist --classes 5-9 --strategy freeze:4 "
               "--train-per-class 20\n"
               "  cnnkit transfer --base resnet18 --weights resnet18-f37072fd.pth --data folder:photos --strategy "
               "finetune\n"
               "  cnnkit transfer --strategy freeze:_blocks.9 --dry-run\n"
               "  cnnkit transfer --base runs/fashion04 --data fashion-mnist --classes 5-9 --strategy extract "
               "--features blocks:3 --dry-run\n"
               "  cnnkit transfer compare --base efficientnet_lite0 --data fashion-mnist --train-per-class 100 "
               "--out runs/compare",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=["compare"], default=None,
                        help="compare: scratch and every strategy side by side (default: train one strategy)")
    comments = _field_comments()
    hints = typing.get_type_hints(TransferConfig)
    for field in dataclasses.fields(TransferConfig):
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name,
                            help=f"{comments.get(field.name, '')} (default: {default})".strip(),
                            **_flag_kwargs(field.name, hints[field.name]))
    parser.add_argument("--dry-run", action="store_true", default=False,
                        help="build and freeze the network, print the freeze audit and the summary, train nothing")
    parser.add_argument("--evaluate", action=argparse.BooleanOptionalAction, default=True,
                        help="after a single run: metrics.json, confusion matrix and mistakes (default: yes)")
    parser.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                        help="after a single run: its report.html, as cnnkit train writes (default: yes)")
    parser.add_argument("--strategies", type=lambda text: [p for p in text.split(",") if p], metavar="A,B",
                        default=None, help="compare: which to run (default: scratch,extract,freeze:K,finetune)")
    parser.add_argument("--scratch-model", default=None, metavar="MODEL",
                        help="compare: the network trained from scratch (default: the base run's, else vgg_small)")
    parser.add_argument("--scratch-epochs", type=int, default=30, metavar="E",
                        help="compare: epochs of the scratch run (default: 30)")
    parser.add_argument("--json", action="store_true", default=False, help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TransferConfig) if hasattr(args, f.name)}
    if args.action == "compare":
        return _compare(args, values)
    for flag in ("strategies", "scratch_model"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag.replace('_', '-')} belongs to `cnnkit transfer compare`")
    from cnnkit.transfer.freeze import audit_text
    from cnnkit.transfer.strategies import features_text, transfer

    config = TransferConfig.from_dict(values)
    result = transfer(config, quiet=args.json, dry_run=args.dry_run)
    output = result.as_dict()
    if args.dry_run:
        if args.json:
            print(json_text({k: v for k, v in output.items() if k != "history"}))
            return 0
        from cnnkit.summarize import summary

        print(f"{result.base} -> {config.data}, strategy {result.strategy} ({result.runtime})")
        print(f"blocks before the classifier ({result.frozen_blocks} of {len(result.blocks)} frozen):")
        for index, block in enumerate(result.blocks, start=1):
            print(f"  {index:>3} {'frozen' if index <= result.frozen_blocks else 'trains':<7} {block.describe()}")
        print(f"\n{features_text(result)}")
        print(f"\nfreeze audit:\n{audit_text(result.audit)}\n")
        print(summary(result.model, result.input_shape, name=result.strategy).to_text(formulas=False))
        print(f"\n{result.trainable_params:,} of {result.total_params:,} parameters train; nothing was written")
        return 0
    if args.evaluate and result.run_dir is not None and result.accuracy is not None:
        from cnnkit.evaluation import evaluate

        evaluation = evaluate(result.run_dir)
        output["evaluation"] = evaluation.as_dict()
        if not args.json:
            from cnnkit.cli.evaluate_cmd import print_evaluation

            print_evaluation(evaluation)
    if args.report and result.run_dir is not None:  # a transfer run is a run: it gets its report too
        from cnnkit.report import write_report

        output["report"] = write_report(result.run_dir).as_dict()
    if args.json:
        output.pop("audit")
        print(json_text(output))
    else:
        accuracy = "-" if result.accuracy is None else f"{result.accuracy:.2%}"
        print(f"{result.strategy}: {result.eval_split} accuracy {accuracy}, {result.trainable_params:,} trainable "
              f"parameters, {result.seconds:.0f} s")
        print(f"run directory: {result.run_dir}")
        if "report" in output:
            print(f"report: {output['report']['report']}")
    return 0


def _compare(args: argparse.Namespace, values: dict[str, Any]) -> int:
    from cnnkit.transfer.comparison import compare

    if args.dry_run:
        raise ValueError("--dry-run shows one strategy's freeze audit: leave out `compare`")
    out = values.pop("out", None)
    if "strategy" in values:
        raise ValueError("`transfer compare` runs several strategies: give them as --strategies scratch,extract,... "
                         f"instead of --strategy. Received: --strategy {values['strategy']}")
    config = TransferConfig.from_dict(values, shared=True)  # each run checks the options of its own strategy
    result = compare(config, out=out, strategies=args.strategies, scratch_model=args.scratch_model,
                     scratch_epochs=args.scratch_epochs, quiet=args.json)
    if args.json:
        print(json_text(result.as_dict()))
    else:
        print()
        print(result.to_text())
        for path in result.files.values():
            print(f"  {path}")
    return 0
