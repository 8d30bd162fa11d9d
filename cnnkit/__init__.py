"""cnnkit: build, explain, train, evaluate, visualise and transfer convolutional neural networks.

``import cnnkit`` is light: torch is imported only by the parts that need it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "load_run", "predict", "summary", "train", "write_report"]

# the top-level API, imported on first use so that `import cnnkit` does not import torch
_LAZY = {
    "summary": ("cnnkit.summarize", "summary"),  # summary(model, input_size) -> ModelSummary
    "train": ("cnnkit.training", "train"),  # train(config or **options) -> TrainResult
    "evaluate": ("cnnkit.evaluation", "evaluate"),  # evaluate(run) -> EvaluationResult
    "load_run": ("cnnkit.runs", "load_run"),  # load_run(path, model=None, trust_code=False) -> Run
    "predict": ("cnnkit.inference", "predict_run"),  # predict(run, files, top=5) -> one prediction per file
    "write_report": ("cnnkit.report", "write_report"),  # write_report(run) -> Report (RUN/report.html)
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
