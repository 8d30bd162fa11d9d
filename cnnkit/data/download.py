"""Downloading a dataset file: mirrors tried in order, checksum verified, written atomically.

The file is streamed into a temporary file beside its destination, hashed
on the way, and renamed into place only when the checksum matches; an
interrupted or corrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: its name, where it can be had, and its published checksum."""

    filename: str  # e.g. "train-images-idx3-ubyte.gz"
    mirrors: tuple[str, ...]  # base URLs ending in "/", tried in order
    algorithm: str  # hashlib name of the published checksum, e.g. "md5" or "sha256"
    digest: str  # hex digest


def cache_dir() -> Path:
    """Where downloads go: ``$CNNKIT_CACHE``, else ``$XDG_CACHE_HOME/cnnkit``, else ``~/.cache/cnnkit``."""
    if os.environ.get("CNNKIT_CACHE"):
        return Path(os.environ["CNNKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnnkit"


def _fetch_one(url: str, destination: Path, remote: RemoteFile) -> None:
    hasher = hashlib.new(remote.algorithm, usedforsecurity=False)  # an integrity check, allowed under FIPS
    handle, temp_name = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            while chunk := response.read(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != remote.digest:
            raise ValueError(
                f"{url}: {remote.algorithm} checksum mismatch, the file is damaged or not the published one. "
                f"Received: {hasher.hexdigest()}, expected {remote.digest}"
            )
        os.replace(temp_name, destination)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def download(remote: RemoteFile, directory: Path) -> Path:
    """``directory / remote.filename``, downloaded from the first mirror that answers with the right checksum.

    Raises ``OSError`` listing every mirror and why it failed when none does
    (no network, HTTP error, checksum mismatch).
    """
    directory.mkdir(parents=True, exist_ok=True)
    destination = directory / remote.filename
    failures = []
    for base in remote.mirrors:
        url = base + remote.filename
        try:
            _fetch_one(url, destination, remote)
            return destination
        except (OSError, http.client.HTTPException, ValueError) as error:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {error}")
    raise OSError(f"could not download {remote.filename}: " + "; ".join(failures))
