"""Colour on a terminal, plain text everywhere else.

Colour helps a person scan phases; in a pipe, a file or a CI log the escape codes are
noise that breaks `grep` and diffs. So colour is on only when the stream is a terminal and
NO_COLOR (https://no-color.org: any non-empty value) is not set. The box-drawing and
phase glyphs need an encoding that has them; without one the tree falls back to ASCII.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

RESET = "\x1b[0m"
GREEN, RED, YELLOW, BLUE, MAGENTA, CYAN, DIM = "32", "31", "33", "34", "35", "36", "2"

PHASE_SGR: Mapping[str, str] = {
    "Succeeded": GREEN,
    "Failed": RED,
    "Running": BLUE,
    "Queued": CYAN,
    "WaitingForApproval": YELLOW,
    "Pending": YELLOW,
    "Suspended": YELLOW,
    "Skipped": DIM,
    "Cancelled": MAGENTA,
}
AGENT_STATE_SGR: Mapping[str, str] = {
    "Idle": GREEN,
    "Active": BLUE,
    "Initializing": YELLOW,
    "Error": RED,
    "Offline": RED,
    "Unknown": DIM,
}
UNICODE_GLYPHS: Mapping[str, str] = {
    "Succeeded": "✔",
    "Failed": "✖",
    "Running": "●",
    "Queued": "◷",
    "WaitingForApproval": "⏸",
    "Pending": "◷",
    "Skipped": "○",
    "Cancelled": "⊘",
}
ASCII_GLYPHS: Mapping[str, str] = {
    "Succeeded": "+",
    "Failed": "x",
    "Running": "*",
    "Queued": ".",
    "WaitingForApproval": "?",
    "Pending": ".",
    "Skipped": "-",
    "Cancelled": "/",
}


@dataclass(frozen=True, slots=True)
class Style:
    """How to draw: with colour escapes or not, with Unicode glyphs or ASCII ones."""

    color: bool = False
    unicode: bool = True

    def paint(self, text: str, sgr: str | None) -> str:
        if not self.color or not sgr or not text:
            return text
        return f"\x1b[{sgr}m{text}{RESET}"

    def glyph(self, phase: str) -> str:
        table = UNICODE_GLYPHS if self.unicode else ASCII_GLYPHS
        return table.get(phase, "?")


def style_for(stream: TextIO, env: Mapping[str, str] | None = None) -> Style:
    """The style for writing to `stream` under environment `env` (default: os.environ)."""
    env = os.environ if env is None else env
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Style(color=tty and not env.get("NO_COLOR"), unicode=_can_encode(stream))


def _can_encode(stream: TextIO) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-16", "utf-32")
    except LookupError:
        return False
