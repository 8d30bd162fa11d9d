"""``cnnkit train``: flags generated from :class:`cnnkit.training.TrainConfig`, then train, then evaluate."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from typing import Any

from cnnkit.fileio import json_text, write_json
from cnnkit.timing import PHASES, phase
from cnnkit.training.config import TrainConfig


def _field_comments() -> dict[str, str]:
    """The ``# comment`` after each TrainConfig field: the help text of its flag."""
    try:
        source = inspect.getsource(TrainConfig)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s+(\w+): .*?#\s*(.+)$", source, re.MULTILINE)}


def _flag_kwargs(name: str, hint: Any) -> dict[str, Any]:
    """argparse arguments for one field type: Literal -> choices, bool -> --x/--no-x, list -> comma list."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
        origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return {"choices": list(typing.get_args(hint))}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is list:
        return {"type": lambda text: [part for part in text.split(",") if part], "metavar": "A,B"}
    return {"type": hint, "metavar": name.upper()}


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """A flag for every :class:`TrainConfig` field (but ``skip``), its help the field's comment."""
    comments = _field_comments()
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        if field.name in skip:
            continue
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        help_text = f"{comments.get(field.name, '')} (default: {default})".strip()
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, help=help_text,
                            **_flag_kwargs(field.name, hints[field.name]))


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text, argument_default=argparse.SUPPRESS,
        description="Train a network (a zoo name or a layer-table file) on a dataset to classify images, segment "
                    "them (a class per pixel), reconstruct or denoise them; write everything into a run directory, "
                    "then evaluate it on the held-out split.",
        epilog="examples:\n  cnnkit train --model lenet5 --data fashion-mnist --epochs 3\n"
               "  cnnkit train --task segment                  # U-Net on shapes-seg\n"
               "  cnnkit train --task denoise --noise gaussian:0.3 --data fashion-mnist\n"
               "  cnnkit train --model my_net.txt --data folder:photos --image-size 64 --val-split 0.2\n"
               "  cnnkit train --recipe fast --data fashion-mnist          # 93% in under two minutes on 2 CPU cores\n"
               "  cnnkit train --resume runs/lenet5-fashion-mnist-20261121-120000 --epochs 5\n"
               "  torchrun --nproc_per_node=2 -m cnnkit train --model resnet_small --batch-size 256   # DDP",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(parser)
    parser.add_argument("--resume", metavar="RUN", help="continue this run directory from its checkpoint "
                        "(with --epochs: up to that many epochs in total)")
    parser.add_argument("--evaluate", action=argparse.BooleanOptionalAction, default=True,
                        help="evaluate on the held-out split when training ends (default: yes)")
    parser.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                        help="write the run's report.html when training ends (default: yes)")
    parser.add_argument("--json", action="store_true", default=False, help="print the result as JSON")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=None,
                        help="draw the figures and the report before returning (default: in a background process "
                             "once the metrics are written, unless CNNKIT_WAIT=1)")
    parser.add_argument("--verbose", action="store_true", default=False,
                        help="print where the time went, per phase (always written to RUN/timings.json)")


def run(args: argparse.Namespace) -> int:
    from cnnkit.training import distributed, resume, train

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if getattr(args, "resume", None):
        extra = sorted(set(values) - {"epochs"})
        if extra:
            raise ValueError(f"--resume continues a run with its own settings; only --epochs may change. "
                             f"Received: {', '.join('--' + e.replace('_', '-') for e in extra)}")
        result = resume(args.resume, values.get("epochs"), quiet=args.json)
    else:
        result = train(TrainConfig.from_dict(values), quiet=args.json)
    if not distributed.from_environment().is_main:
        return 0  # under torchrun, rank 0 reports and evaluates; the others only trained alongside
    output: dict[str, Any] = {"run_dir": str(result.run_dir), "runtime": result.runtime,
                              "stop_reason": result.stop_reason, "history": result.history}
    if result.stop_reason:
        print(f"stopped ({result.stop_reason}); continue with: cnnkit train --resume {result.run_dir}")
        return 130 if result.stop_reason == "interrupted" else 1
    from cnnkit.report.background import start, wait_wanted

    wait = wait_wanted(args.wait)
    evaluated = bool(args.evaluate and result.history and any(k.startswith(("test_", "val_")) for k in result.final))
    if evaluated:
        from cnnkit.evaluation import evaluate

        with phase("evaluation"):
            evaluation = evaluate(result.run_dir, figures=wait)
        output["evaluation"] = evaluation.as_dict()
        if not args.json:
            from cnnkit.cli.evaluate_cmd import print_evaluation

            print_evaluation(evaluation)
    report = None
    if wait and args.report:
        from cnnkit.report import write_report

        with phase("report"):
            report = write_report(result.run_dir)
        output["report"] = report.as_dict()
    elif not wait and (evaluated or args.report):
        pid = start(result.run_dir, evaluate=evaluated, report=args.report)
        output["background"] = {"pid": pid, "log": str(result.run_dir / "figures.log"),
                                "report": str(result.run_dir / "report.html") if args.report else None}
    from cnnkit.runs import TIMINGS

    timings = PHASES.as_dict()
    write_json(result.run_dir / TIMINGS, timings)
    output["timings"] = timings
    if args.json:
        print(json_text(output))
    else:
        if args.verbose:
            print("where the time went (wall clock):", *PHASES.lines(), sep="\n")
        print(f"run directory: {result.run_dir}")
        for name in ("metrics.jsonl", "model.safetensors", "summary.txt"):
            print(f"  {result.run_dir / name}")
        for path in output.get("evaluation", {}).get("files", {}).values():
            print(f"  {path}")
        if report is not None:
            from cnnkit.cli.report_cmd import print_report

            print_report(report)
        if "background" in output:
            drawn = "figures and report.html" if args.report else "figures"
            print(f"{drawn}: being drawn in the background (process {output['background']['pid']}), in "
                  f"{result.run_dir} within seconds; `cnnkit report {result.run_dir}` draws the report now, "
                  f"`--wait` waits for them")
    return 0
