"""``python -m cnnkit``: the same as the ``cnnkit`` command."""

from cnnkit.cli import main

raise SystemExit(main())
