"""``python -m cnnkit``: the same as the ``cnnkit`` command."""

from cnnkit.cli import entry

entry()
