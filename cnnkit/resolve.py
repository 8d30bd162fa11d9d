"""Which network a name means: the one answer for every command that takes RUN_OR_MODEL, --model or --base.

The precedence, first match wins:

1. a **run directory** (a folder holding a model card: ``cnnkit train`` or
   ``cnnkit transfer`` made it): its trained network;
2. a **layer-table file**: anything that looks like a path (has a suffix,
   exists, or holds a ``/``), so ``nets/lenet.txt`` is never taken for a name;
3. a **shipped table** (``lenet_slides``, ``keras_slides``, ...);
4. a **zoo model** (``cnnkit models``).

Anything else is an error that lists the nearest names. Each command says
which kinds it accepts (``cnnkit train --model`` takes tables and zoo models,
``cnnkit transfer --base`` runs and zoo models), and the message for a kind it
does not take says what it does take.

>>> resolve("lenet5").kind, resolve("lenet_slides").kind
('zoo', 'table')
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cnnkit.runs import Run
    from cnnkit.spec import Spec

Kind = Literal["run", "table", "zoo"]
KINDS: tuple[Kind, ...] = ("run", "table", "zoo")
_WORDS = {"run": "a run directory", "table": "a layer-table file, a shipped table", "zoo": "a zoo model"}


def _either(kinds: tuple[Kind, ...]) -> str:
    """``("run", "zoo")`` -> ``"a run directory or a zoo model"``."""
    words = ", ".join(_WORDS[kind] for kind in kinds).rsplit(", ", 1)
    return " or ".join(words)


@dataclass(frozen=True)
class Target:
    """What a name resolved to."""

    kind: Kind
    name: str  # the zoo name, the table's name (file stem or shipped name) or the run folder's name
    path: Path | None = None  # the run directory or the table file; None for shipped tables and zoo models
    shipped: bool = False  # a table that ships with cnnkit

    def run(self) -> Run:
        """The run directory, opened (kind ``run``)."""
        from cnnkit.runs import Run

        assert self.kind == "run" and self.path is not None
        return Run.open(self.path)

    def table(self, input_shape: tuple[int, ...] | None = None) -> Spec:
        """The layer table, parsed for ``input_shape`` (None: the table's own ``input`` line) (kind ``table``)."""
        from cnnkit import spec

        assert self.kind == "table"
        return spec.load_shipped(self.name, input_shape) if self.shipped else spec.load(self.path or self.name,
                                                                                       input_shape)


def _looks_like_path(text: str, path: Path) -> bool:
    return bool(path.suffix) or path.exists() or "/" in text


def resolve(target: str | Path, *, accept: tuple[Kind, ...] = KINDS, flag: str = "TARGET") -> Target:
    """The network ``target`` names (module doc); ``accept`` the kinds the caller takes, ``flag`` its argument."""
    from cnnkit import models, spec
    from cnnkit.runs import Run

    text = str(target).strip()
    path = Path(text)
    taken = _either(accept)
    if path.is_dir():
        if not Run.is_run(path):
            raise ValueError(f"{flag} {text}: a folder but not a run directory of `cnnkit train` (no model card, "
                             f"model.json); {flag} takes {taken}")
        found = Target("run", path.resolve().name, path)
    elif _looks_like_path(text, path):
        found = Target("table", path.stem, path)
    elif text in spec.shipped_tables():
        found = Target("table", text, shipped=True)
    elif text in models.names():
        found = Target("zoo", text)
    else:
        names = [*(spec.shipped_tables() if "table" in accept else ()), *(models.names() if "zoo" in accept else ())]
        near = difflib.get_close_matches(text, names, n=3, cutoff=0.4)
        hint = f" Did you mean {' or '.join(near)}?" if near else ""
        tables = f"; shipped tables: {', '.join(sorted(spec.shipped_tables()))}" if "table" in accept else ""
        zoo = "; zoo models: `cnnkit models`" if "zoo" in accept else ""
        raise ValueError(f"{flag} {text!r} is not {taken}.{hint}{tables}{zoo}")
    if found.kind not in accept:
        raise ValueError(f"{flag} {text}: {_either((found.kind,))}, but {flag} takes {taken}")
    return found
