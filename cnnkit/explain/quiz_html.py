"""A quiz as one printable HTML page: every question first, the worked answers after a page break.

The page is self-contained (no scripts, no files beside it): matrices as small
tables, a blank space under each question to work in, and the answers in a
section that starts on a new printed page (``break-before: page``).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from cnnkit.explain.matrices import number
from cnnkit.explain.quiz import Exercise, Quiz
from cnnkit.fileio import atomic_write

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; border-bottom: 1px solid #999; }
.exercise { margin-bottom: 1.5em; break-inside: avoid; }
.work { height: 7em; border: 1px dashed #bbb; margin-top: .5em; }
table.m { border-collapse: collapse; display: inline-table; margin: .3em 1.2em .3em 0; vertical-align: top; }
table.m caption { font-size: .9em; text-align: left; }
table.m td { border: 1px solid #888; min-width: 2.2em; text-align: center; padding: .15em .35em; }
pre { background: #f6f6f6; padding: .5em; white-space: pre-wrap; }
.answers { break-before: page; page-break-before: always; }
.answer { margin-bottom: 1.2em; break-inside: avoid; }
@media print { .work { height: 9em; } }
"""


def _cell(value: Any) -> str:
    if value is None:  # a padded -inf cell is null in JSON; the quiz matrices never hold one
        return ""
    return escape(f"{number(float(value)):g}")


def matrix_table(name: str, rows: list[list[Any]]) -> str:
    """One matrix as a small bordered table, its name and size as the caption."""
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="m"><caption>{escape(name)} ({len(rows)}x{len(rows[0])})</caption>{body}</table>'


def _shown(exercise: Exercise) -> str:
    parts = []
    for name, value in exercise.shown.items():
        parts.append(f"<pre>{escape(value)}</pre>" if isinstance(value, str) else matrix_table(name, value))
    return "".join(parts)


def quiz_html(quiz: Quiz) -> str:
    """The whole page as text."""
    questions = "".join(
        f'<div class="exercise" id="q{e.number}"><h3>Exercise {e.number}</h3><p>{escape(e.question)}</p>{_shown(e)}'
        '<div class="work"></div></div>' for e in quiz.exercises)
    answers = "".join(
        f'<div class="answer" id="a{e.number}"><h3>Exercise {e.number}: {escape(e.summary)}</h3>'
        + (matrix_table("output", e.answer["output"]) if "output" in e.answer else "")
        + f"<pre>{escape(chr(10).join(e.working))}</pre></div>" for e in quiz.exercises)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(quiz.title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{escape(quiz.title)}</h1>"
            f"<p>Work each exercise in the space under it; the answers, worked step by step, start on a new page. "
            f"<code>cnnkit explain quiz --topic {escape(quiz.topic)} --seed {quiz.seed} --count {len(quiz.exercises)}"
            f"</code> prints the same quiz again.</p>"
            f'<section class="questions"><h2>Exercises</h2>{questions}</section>'
            f'<section class="answers"><h2>Answers</h2>{answers}</section></body></html>\n')


def write_quiz_html(quiz: Quiz, path: str | Path) -> Path:
    """Write :func:`quiz_html` to ``path`` atomically; a missing folder is an error naming it."""
    target = Path(path)
    if target.parent != Path() and not target.parent.is_dir():
        raise FileNotFoundError(f"`--html`: the folder {str(target.parent)!r} does not exist. Received: --html={str(target)!r}")
    atomic_write(target, quiz_html(quiz).encode("utf-8"))
    return target
