"""Aligned columns, kubectl style, where a cell may carry colour.

Widths are measured on the text, not on the escape codes around it, so a coloured table
lines up exactly like the plain one. With a terminal width, only the last column (free
text: messages) is cut, so the columns people compare stay whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opscore_cli.style import Style

GAP = "   "


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text in one colour (`sgr`: an SGR parameter such as "32", or None)."""

    text: str
    sgr: str | None = None


Cell = tuple[Span, ...]


def cell(text: object, sgr: str | None = None) -> Cell:
    return (Span(str(text), sgr),)


def width_of(value: Cell) -> int:
    return sum(len(span.text) for span in value)


def render_table(
    header: Sequence[str], rows: Sequence[Sequence[Cell]], style: Style, width: int | None = None
) -> list[str]:
    """The table's lines (header first), trailing blanks removed."""
    table: list[Sequence[Cell]] = [[cell(h) for h in header], *rows]
    columns = len(header)
    widths = [max(width_of(row[i]) for row in table) for i in range(columns)]
    lines = []
    for row in table:
        parts = []
        used = 0
        for i, value in enumerate(row):
            last = i == columns - 1
            if last and width is not None:
                value = _cut(value, max(width - used, 8), style)
            text = "".join(style.paint(span.text, span.sgr) for span in value)
            pad = "" if last else " " * (widths[i] - width_of(value)) + GAP
            parts.append(text + pad)
            used += widths[i] + len(GAP)
        lines.append("".join(parts).rstrip())
    return lines


def _cut(value: Cell, room: int, style: Style) -> Cell:
    if width_of(value) <= room:
        return value
    ellipsis = "…" if style.unicode else "..."
    out: list[Span] = []
    left = room - len(ellipsis)
    for span in value:
        if left <= 0:
            break
        out.append(Span(span.text[:left], span.sgr))
        left -= len(span.text)
    return (*out, Span(ellipsis))
