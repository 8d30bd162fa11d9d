"""``cnnkit explain quiz``: exercises with their worked answers, as text, JSON or a printable HTML page.

    cnnkit explain quiz --topic conv --seed 3
    cnnkit explain quiz --topic params --seed 1 --count 8 --json
    cnnkit explain quiz --topic shapes --seed 7 --html shapes-quiz.html

A thin layer over :func:`cnnkit.explain.quiz.make_quiz`.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.fileio import json_text

TOPICS = ("conv", "pool", "params", "shapes")  # as cnnkit.explain.quiz.TOPICS, which this module does not import for --help


def add_quiz_parser(what: Any) -> argparse.ArgumentParser:
    """Add the ``quiz`` sub-command to ``cnnkit explain``'s sub-parsers ``what``."""
    quiz: argparse.ArgumentParser = what.add_parser(
        "quiz", help="exercises with worked answers (conv, pool, params, shapes), as text, JSON or a printable page",
        description="Draw exercises at random from a seed, with their answers worked out by the same code as the "
        "explanations: a convolution or a pooling of a small matrix, one layer's parameters, or the output shapes of a "
        "short layer table. The same topic, seed and count give the same quiz.")
    quiz.add_argument("--topic", required=True, choices=TOPICS, help="conv, pool, params or shapes")
    quiz.add_argument("--seed", type=int, default=0, metavar="N", help="which quiz: the same seed, the same exercises (default 0)")
    quiz.add_argument("--count", type=int, default=5, metavar="K", help="how many exercises, 1 to 50 (default 5)")
    quiz.add_argument("--html", default=None, metavar="FILE", help="also write a printable HTML page: the questions, then "
                      "the worked answers after a page break")
    quiz.add_argument("--json", action="store_true", help="print JSON instead of text")
    return quiz


def run(args: argparse.Namespace) -> int:
    from cnnkit.explain.quiz import MAX_COUNT, make_quiz, render_quiz
    from cnnkit.explain.quiz_html import write_quiz_html

    if args.seed < 0:
        raise ValueError(f"`--seed` must be a non-negative int. Received: --seed={args.seed}")
    if not 1 <= args.count <= MAX_COUNT:
        raise ValueError(f"`--count` must be from 1 to {MAX_COUNT}. Received: --count={args.count}")
    if args.html is not None and not str(args.html).lower().endswith((".html", ".htm")):
        raise ValueError(f"`--html` must name a .html file. Received: --html={args.html!r}")
    quiz = make_quiz(args.topic, args.seed, args.count)
    written = None if args.html is None else str(write_quiz_html(quiz, args.html))
    if args.json:
        print(json_text({**quiz.to_dict(), **({"html": written} if written else {})}))
    else:
        print(render_quiz(quiz) + (f"\nwrote {written}: the questions, then the answers after a page break" if written else ""))
    return 0
