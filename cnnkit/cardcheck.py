"""The schema of a run's files: every name, path and number read from a run directory is checked before use.

A run directory may come from anywhere (a colleague, a download), so its
files are untrusted input. :class:`Fields` reads one JSON object and raises
``ValueError`` naming the file, the field and what was received; nothing read
from a run becomes a file name unless it is a plain name (:data:`SAFE_NAME`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SAFE_NAME = re.compile(r"[^/\\\x00.][^/\\\x00]{0,127}")  # no separator, no NUL, no leading dot: never a path
MAX_SIDE = 8192  # largest image side a run may declare
MAX_CLASSES = 100_000
MAX_TEXT = 1 << 20  # a layer table's text, in characters
_CLASS_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_<][\w.<>]*")  # a module source's class: package.module:Class


class Fields:
    """Typed reads of one JSON object of a run's file; each failure names the file and the field."""

    def __init__(self, values: Any, path: Path, what: str = "") -> None:
        if not isinstance(values, dict):
            raise ValueError(f"{path}: {what or 'the file'} must be a JSON object. Received: {type(values).__name__}"
                             f"; the run directory is damaged or not cnnkit's")
        self.values, self.path, self.prefix = values, path, f"{what}." if what else ""

    def _fail(self, key: str, rule: str, value: Any) -> ValueError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return ValueError(f"{self.path}: `{self.prefix}{key}` must be {rule}. Received: {shown}")

    def has(self, key: str) -> bool:
        return key in self.values and self.values[key] is not None

    def need(self, key: str) -> Any:
        if key not in self.values:
            raise ValueError(f"{self.path}: no `{self.prefix}{key}`; the run directory is damaged or not cnnkit's")
        return self.values[key]

    def text(self, key: str, default: str | None = None, limit: int = 1000) -> str:
        value = self.values.get(key, default) if default is not None else self.need(key)
        if not isinstance(value, str) or len(value) > limit:
            raise self._fail(key, f"text of at most {limit:,} characters", value)
        return value

    def name(self, key: str) -> str:
        """A plain name: no path separator, no leading dot, at most 128 characters, so never a path."""
        value = self.need(key)
        if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
            raise self._fail(key, "a plain name (no / or \\, not starting with a dot, at most 128 characters)", value)
        return value

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.values.get(key, default) if default is not None else self.need(key)
        if value not in choices:
            raise self._fail(key, f"one of {', '.join(map(repr, choices))}", value)
        return str(value)

    def shape(self, key: str, channels: Sequence[int] = (1, 3)) -> tuple[int, int, int]:
        """``(C, H, W)``: C one of ``channels``, H and W from 1 to :data:`MAX_SIDE`."""
        value = self.need(key)
        if (not isinstance(value, list | tuple) or len(value) != 3 or not all(_is_int(v) for v in value)
                or value[0] not in channels or not all(1 <= v <= MAX_SIDE for v in value[1:])):
            raise self._fail(key, f"[C, H, W] with C in {list(channels)} and sides from 1 to {MAX_SIDE}", value)
        return (int(value[0]), int(value[1]), int(value[2]))

    def names(self, key: str, limit: int = MAX_CLASSES, length: int = 200) -> tuple[str, ...]:
        value = self.need(key)
        if (not isinstance(value, list) or len(value) > limit
                or not all(isinstance(v, str) and len(v) <= length for v in value)):
            raise self._fail(key, f"a list of at most {limit:,} names (text up to {length:,} characters each)", value)
        return tuple(value)

    def obj(self, key: str) -> Fields:
        return Fields(self.need(key), self.path, f"{self.prefix}{key}")

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.need(key)
        if not _is_int(value) or not low <= value <= high:
            raise self._fail(key, f"a whole number from {low:,} to {high:,}", value)
        return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_source(fields: Fields, depth: int = 0) -> dict[str, Any]:
    """A network source (:mod:`cnnkit.network`): its kind, a plain name, and what its kind needs, checked."""
    kind = fields.choice("kind", ("zoo", "table", "transfer", "module"))
    fields.name("name")
    if kind == "module":
        path = fields.text("class", limit=1000)
        if not _CLASS_PATH.fullmatch(path):
            raise fields._fail("class", "an import path such as package.module:Class", path)
        return dict(fields.values)
    if kind == "zoo":
        from cnnkit import models

        fields.choice("name", models.names())
        kwargs = fields.obj("kwargs")
        for key, value in kwargs.values.items():
            if not isinstance(value, str | int | float | bool | list | type(None)):
                raise kwargs._fail(key, "a number, text, true/false or a list", value)
        if fields.has("backbone"):  # a detector over a run's network (cnnkit.network.run_backbone)
            if depth > 4:
                raise fields._fail("backbone", "a source nested at most 4 deep", "...")
            backbone = fields.obj("backbone")
            check_source(backbone.obj("source"), depth + 1)
            backbone.shape("input_shape")
            backbone.text("run", limit=4096)
    elif kind == "table":
        fields.text("text", limit=MAX_TEXT)
    else:
        if depth > 4:
            raise fields._fail("base", "a source nested at most 4 deep", "...")
        check_source(fields.obj("base"), depth + 1)
        fields.shape("base_input_shape")
        head = fields.obj("head")
        head.name("name")
        head.choice("type", ("linear", "knn"))
        head.integer("in_features", 1, 1 << 24)
        head.integer("num_classes", 1, MAX_CLASSES)
        if head.values["type"] == "knn":
            head.integer("samples", 1, 1 << 24)
            head.integer("k", 1, 1 << 16)
        adapter = fields.obj("adapter")
        adapter.integer("in_channels", 1, 3)
        adapter.integer("channels", 1, 3)
    return dict(fields.values)
