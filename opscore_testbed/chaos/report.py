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
_NOT_DETAILS = {
    *COLUMNS,
    "fault",
    "problems",
    "evidence",
    "promises",
    "failed_as_expected",
    "tasks_received",
    "verdicts",
}

#: Counts every scenario must keep at 0 (or empty): each is a broken guarantee.
ALWAYS_ZERO = (
    "lost",
    "duplicated",
    "unexpected",
    "mismatched",
    "tracebacks",
    "unconfirmed_successes",
    "unaccounted_tasks",
    "deliveries_without_task_id",
)


def promise(field: str, bound: Any, *, at_least: bool = False) -> tuple[str, Any, str]:
    """A scenario's own promise, kept in its row: `field` must be at most `bound` (a
    number; with `at_least`, at least), or equal to it (anything else: a bool, a dict)."""
    return (field, bound, ">=" if at_least else "<=")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _broken(row: Row, field: str, bound: Any, op: str = "<=") -> str | None:
    if field not in row:
        return f"{field} was promised ({bound!r}) but not measured"
    value = row[field]
    if _is_number(bound) and _is_number(value):
        kept = value >= bound if op == ">=" else value <= bound
        return None if kept else f"{field}={value}, promised {op} {bound}"
    return None if value == bound else f"{field}={value!r}, promised {bound!r}"


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
    """Why the suite fails, one line per broken guarantee: anything in `ALWAYS_ZERO`, a
    promise of the row's (`promises`) not kept, or a problem the scenario found itself
    (`problems`: its crash, say). The names behind a count are in `evidence`."""
    found = []
    for row in rows:
        name = row["scenario"]
        for key in ALWAYS_ZERO:
            if key == "duplicated" and row.get("duplicated_predicted"):
                # Only where the scenario knows which task ids a retry may duplicate (F10).
                if row["duplicated"] > row["duplicated_predicted"]:
                    found.append(
                        f"{name}: duplicated={row['duplicated']},"
                        f" of which predicted {row['duplicated_predicted']}"
                    )
            elif row.get(key):
                found.append(f"{name}: {key}={row[key]}")
        for field, bound, *op in row.get("promises") or []:
            broken = _broken(row, field, bound, *op)
            if broken is not None:
                found.append(f"{name}: {broken}")
        found.extend(f"{name}: {p}" for p in row.get("problems") or [])
    return found


def save(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": meta, "scenarios": rows, "problems": problems(rows)}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
