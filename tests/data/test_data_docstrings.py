"""The runnable examples in the data package's docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["cnnkit.data", "cnnkit.data.catalog", "cnnkit.data.batches"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
