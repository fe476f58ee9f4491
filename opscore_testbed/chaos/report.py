"""The suite's table for people, its JSON for tools, and its verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Row = dict[str, Any]

#: The columns every workload scenario prints, in order; the rest go to "details".
COLUMNS = (
    "scenario",
    "workflows",
    "succeeded",
    "failed",
    "lost",
    "duplicated",
    "redispatched_steps",
    "fault_s",
    "recover_s",
    "drain_s",
)
_NOT_DETAILS = {*COLUMNS, "fault", "problems", "failed_as_expected", "tasks_received", "verdicts"}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def table(rows: list[Row]) -> str:
    """Markdown: one line per scenario, its fault and its extra figures last."""
    head = [*COLUMNS, "fault", "details"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        cells = [_cell(row.get(column)) for column in COLUMNS]
        if "failed" in row and "failed_as_expected" in row:
            cells[3] = f"{row['failed']} ({row['failed_as_expected']} as expected)"
        details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in _NOT_DETAILS)
        lines.append("| " + " | ".join([*cells, row.get("fault", ""), details]) + " |")
    return "\n".join(lines)


def problems(rows: list[Row]) -> list[str]:
    """Why the suite fails: anything lost, duplicated or answered against the docs."""
    found = []
    for row in rows:
        name = row["scenario"]
        for key in ("lost", "duplicated", "unexpected", "mismatched", "tracebacks"):
            if row.get(key):
                found.append(f"{name}: {key}={row[key]}")
        found.extend(f"{name}: {p}" for p in row.get("problems") or [])
    return found


def save(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": meta, "scenarios": rows, "problems": problems(rows)}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
