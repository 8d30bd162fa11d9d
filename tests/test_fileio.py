"""Files written whole, with the mode the user's umask gives (a lab server's colleagues can read the reports)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cnnkit.fileio import atomic_write, check_regular


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_get_the_mode_of_the_umask(mask: int, tmp_path: Path) -> None:
    old = os.umask(mask)
    try:
        atomic_write(tmp_path / "report.html", b"<html></html>")
        plain = tmp_path / "plain.txt"
        plain.write_bytes(b"x")  # what open() makes under the same mask
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask
    assert (tmp_path / "report.html").read_bytes() == b"<html></html>" and not list(tmp_path.glob(".*.tmp"))


def test_special_and_oversized_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match=r"pipe: a named pipe, not a regular file"):
        check_regular(tmp_path / "pipe")
    with pytest.raises(ValueError, match=r"a folder, not a regular file"):
        check_regular(tmp_path)
    (tmp_path / "big").write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match=r"big: 100 bytes, more than the 10 read here"):
        check_regular(tmp_path / "big", 10)
    with pytest.raises(FileNotFoundError, match=r"missing: no such file"):
        check_regular(tmp_path / "missing")
