"""One self-contained HTML page: sections of tables, text and PNGs embedded as base64 (no torch here).

The page needs nothing but itself: no scripts, no fonts, no files beside it,
so it opens offline, can be mailed, and shows the same years later. Every
piece of text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2330; background: #f4f5f7; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 2px 0; color: #c9cfdb; }
nav a { color: #9fc3ff; margin-right: 14px; font-size: 14px; }
main { padding: 8px 32px 40px 32px; max-width: 1400px; }
section { background: #fff; border-radius: 6px; padding: 12px 20px 18px 20px; margin: 16px 0; box-shadow: 0 1px 3px #0002; }
h2 { font-size: 18px; margin: 6px 0 12px 0; }
table { border-collapse: collapse; font-size: 14px; margin: 6px 0; }
th, td { border-bottom: 1px solid #e3e6eb; padding: 4px 12px 4px 0; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f8fa; padding: 10px; overflow-x: auto; white-space: pre-wrap; font-size: 12px; line-height: 1.35; }
figure { margin: 10px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6eb; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; }
p.note { color: #8a5a00; background: #fff7e0; padding: 6px 10px; border-radius: 4px; }
"""


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Section:
    """One ``<section id=...>`` of the page: a heading and blocks of already-safe HTML."""

    id: str  # the anchor, e.g. "curves"
    title: str
    blocks: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Say why something is missing, instead of leaving a silent gap."""
        self.blocks.append(f'<p class="note">{escape(text)}</p>')

    def paragraph(self, text: str) -> None:
        self.blocks.append(f"<p>{escape(text)}</p>")

    def preformatted(self, text: str) -> None:
        self.blocks.append(f"<pre>{escape(text)}</pre>")

    def image(self, path: Path, caption: str) -> None:
        """The PNG at ``path``, embedded as a data URI (the page must not depend on files beside it)."""
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        self.blocks.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}" '
                           f'data-file="{escape(Path(path).name)}"><figcaption>{escape(caption)}</figcaption></figure>')

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """A table; numbers are right-aligned, floats written with 4 significant digits."""
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for value in row:
                if isinstance(value, float):
                    cells.append(f'<td class="number">{value:.4g}</td>')
                elif isinstance(value, int) and not isinstance(value, bool):
                    cells.append(f'<td class="number">{value:,}</td>')
                else:
                    cells.append(f"<td>{escape(value)}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        self.blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def to_html(self) -> str:
        return f'<section id="{escape(self.id)}"><h2>{escape(self.title)}</h2>\n' + "\n".join(self.blocks) + "</section>"


def render(title: str, subtitle: Sequence[str], sections: Sequence[Section]) -> str:
    """The whole page: a header with links to every section, then the sections in order."""
    links = " ".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    lines = "".join(f"<p>{escape(line)}</p>" for line in subtitle)
    body = "\n".join(section.to_html() for section in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<header><h1>{escape(title)}</h1>{lines}<nav>{links}</nav></header>\n<main>\n{body}\n</main>\n"
            f"</body>\n</html>\n")
