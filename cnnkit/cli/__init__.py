"""The ``cnnkit`` command: a thin layer that maps arguments onto one library call per command.

Each command lives in its own module under ``cnnkit.cli`` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``, and is listed in
``COMMANDS``. Modules are imported only for the command that runs, so
``cnnkit --help`` does not import torch.

User errors (``ValueError``, ``TypeError``, ``OSError`` raised by the library)
print one line, ``cnnkit: error: ...``, and exit with status 2; a traceback
means a bug in cnnkit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence

from cnnkit import __version__
from cnnkit.timing import mark_startup

# command name -> (module, one-line help); the module is imported only when needed
COMMANDS: dict[str, tuple[str, str]] = {
    "summary": ("cnnkit.cli.summary_cmd", "per-layer table: output shapes, parameters, MACs, receptive field, formulas"),
    "train": ("cnnkit.cli.train_cmd", "train a network on a dataset into a run directory, then evaluate it"),
    "evaluate": ("cnnkit.cli.evaluate_cmd", "metrics, confusion matrix and mistakes of a trained run"),
    "models": ("cnnkit.cli.models_cmd", "list the model zoo: task, parameters, default input, pretrained weights"),
    "export": ("cnnkit.cli.export_cmd", "export a trained run to ONNX or TorchScript, checked against PyTorch"),
    "predict": ("cnnkit.cli.predict_cmd", "classify image files with a trained run or a pretrained zoo model"),
    "explain": ("cnnkit.cli.explain_cmd", "work a convolution or pooling step by step; check the slides' examples"),
    "filter": ("cnnkit.cli.filter_cmd", "apply a classic kernel (Sobel, Laplacian, blur ...) to an image"),
    "visualize": ("cnnkit.cli.visualize_cmd", "what a CNN sees: filters, feature maps, Grad-CAM, saliency, curves"),
    "report": ("cnnkit.cli.report_cmd", "write a run's report.html: config, summary, curves, metrics, figures"),
    "lr-find": ("cnnkit.cli.lr_find_cmd", "learning-rate range test: the loss as the rate grows, and a rate to train with"),
    "transfer": ("cnnkit.cli.transfer_cmd", "reuse a pretrained network (extract, freeze:K, finetune); compare with scratch"),
    "data": ("cnnkit.cli.data_cmd", "pack an image folder once into arrays that train without decoding (packed:DIR)"),
    "explore": ("cnnkit.cli.explore_cmd", "a web page to see a network work on an image: maps, one unit worked, Grad-CAM"),
}

USER_ERRORS = (ValueError, TypeError, OSError)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module (if any) is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="cnnkit",
        description="Build, explain, train, evaluate, visualise and transfer convolutional neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if name == command:
            importlib.import_module(module_name).add_parser(subparsers, name, help_text)
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    return f"cnnkit: warning: {message}\n"


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``; anything else is argparse's one-line usage error
    (exit status 2), naming the flag."""

    def read(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}. Received: {text!r}")
        return int(text)

    return read


def figure_file(flag: str) -> Callable[[str], str]:
    """An argparse type: a figure's path, ``.png`` or ``.svg`` in a folder that exists, checked when the flags are
    read, before any work (:func:`cnnkit.explain.panels.check_figure_path`); else a one-line usage error."""

    def read(text: str) -> str:
        from cnnkit.explain.panels import check_figure_path

        try:
            check_figure_path(text, flag)
        except (ValueError, FileNotFoundError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text

    return read


_NEGATIVE = re.compile(r"-(\d|\.\d)")  # a value such as -1/8, -1e-3 or "-1 2; 3 4", not an option


def _negative_values(args: list[str]) -> list[str]:
    """``--kernel -1/8`` -> ``--kernel=-1/8``: argparse takes only plain negative numbers (``-1``, ``-0.5``) as
    values and would read ``-1/8`` or ``-1e-3`` as an unknown option; no cnnkit option is named like a number."""
    out: list[str] = []
    for arg in args:
        previous = out[-1] if out else ""
        if _NEGATIVE.match(arg) and previous.startswith("--") and "=" not in previous and previous != "--":
            out[-1] = f"{previous}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``cnnkit`` command; returns the exit status."""
    args_list = _negative_values(list(sys.argv[1:] if argv is None else argv))
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    mark_startup()  # python, cnnkit and the command's imports (torch, for most)
    # cnnkit's own warnings (a file left out of a dataset) as one line each, as its errors are
    warnings.formatwarning = _one_line_warning
    try:
        return int(module.run(args))
    except BrokenPipeError:
        # the reader (e.g. `| head`) closed the pipe: not an error; keep Python from complaining at exit
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except USER_ERRORS as error:
        print(f"cnnkit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnkit: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``cnnkit`` command: :func:`main`, then the process ends without tearing its modules down.

    With torch loaded (and ``torch._dynamo``, which ``torch.optim``'s own classes and ``--compile`` import) Python's
    own shutdown took 1.5 s on a 2-core CPU, after everything cnnkit writes is already written, flushed and closed (atomic writes;
    a background drawing process is its own). So the exit status is returned with ``os._exit`` once standard
    output and error are flushed. ``main`` itself (tests, ``python -m cnnkit``) returns normally.
    """
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a closed pipe or stream: nothing more can be said there
        pass
    os._exit(status)
