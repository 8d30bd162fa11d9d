"""Files written whole or not at all, and JSON read with a message that names the file.

Every file cnnkit writes goes to a temporary file in the same folder, is
flushed to disk and renamed over the old one, so an interruption never
leaves half a file and a reader sees the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's file-creation mask: from /proc on Linux (no change to the process), else by setting it and
    putting it back (there is no getter)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600 files: give the mode open() would have
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


MAX_JSON_BYTES = 64 << 20  # a run's JSON files are kilobytes; refuse what could only exhaust memory


def check_regular(path: Path, limit: int | None = None) -> None:
    """Raise unless ``path`` is a regular file (of at most ``limit`` bytes): reading a named pipe or a device would
    block forever or never end. ``FileNotFoundError`` if missing, ``ValueError`` otherwise; both name the path."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode) else \
            "a device or socket"
        raise ValueError(f"{path}: {kind}, not a regular file")
    if limit is not None and info.st_size > limit:
        raise ValueError(f"{path}: {info.st_size:,} bytes, more than the {limit:,} read here")


def inside(folder: Path, name: str | Path) -> Path:
    """``folder / name``, checked to be the folder's own: ``name`` is relative without ``..``, and no part of it
    below ``folder`` is a symbolic link (``folder`` itself may be one).

    A run directory can come from someone else: a link inside it (``mistakes.png -> ~/secret.txt``) would make
    cnnkit read, and a report embed, a file from elsewhere. ``ValueError`` names the link; a missing file is
    returned as it is (the caller says what it needed).
    """
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{folder / relative}: not a file of {folder} (an absolute path or one with ..)")
    path = folder
    for part in relative.parts:
        path = path / part
        if path.is_symlink():
            raise ValueError(f"{path}: a symbolic link (to {os.readlink(path)}); cnnkit reads only the folder's own "
                             f"files, never what a link inside it points to: replace the link by a copy of the file")
    return path


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, in lists, tuples and dicts at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_text(value: Any, indent: int | None = 2) -> str:
    """``value`` as valid JSON (RFC 8259 has no NaN or Infinity: such numbers become null), for files and stdout."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON at ``path``, atomically."""
    atomic_write(path, (json_text(value) + "\n").encode())


def loads_json(text: str) -> Any:
    """``json.loads``, with text nested deeper than Python's recursion limit a ``json.JSONDecodeError`` too (the
    standard library raises ``RecursionError``, which no caller expects from a file of brackets)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested deeper than this reader follows", text[:40], 0) from None


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; a missing or damaged file is an error naming it."""
    try:
        check_regular(path, MAX_JSON_BYTES)
        return loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
