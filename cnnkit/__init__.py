"""cnnkit: build, explain, train, evaluate, visualise and transfer convolutional neural networks.

``import cnnkit`` is light: torch is imported only by the parts that need it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "summary"]


def __getattr__(name: str) -> Any:
    # `cnnkit.summary(model, input_size)` without importing torch at `import cnnkit`
    if name == "summary":
        from cnnkit.summarize import summary

        return summary
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
