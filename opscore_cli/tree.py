"""`kubectl opscore get`: a run as a header and a tree of its steps.

Each step hangs under the dependency it waits for last (the one placed latest in
dependency order), so a chain reads top to bottom as it runs, and parallel branches fan
out under their common step. A step that waits for more than one step says so ("also
after ..."), since a tree can draw only one parent. Pure: objects in, text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opscore_cli.humanize import age, duration
from opscore_cli.style import PHASE_SGR, Style
from opscore_cli.table import Cell, Span, cell, render_table
from opscore_logic.base import parse_time
from opscore_logic.run_view import StepRow, usage_cost, usage_tokens
from opscore_logic.trace_ids import trace_id_hex

HEADER = ("STEP", "PHASE", "AGENT", "ATTEMPT", "DURATION", "TOKENS", "COST", "MESSAGE")


@dataclass(frozen=True, slots=True)
class Placed:
    """A step's place in the tree: the drawing before its name, and its other parents."""

    prefix: str
    row: StepRow
    also_after: tuple[str, ...]


def layout(rows: Sequence[StepRow], *, unicode: bool = True) -> list[Placed]:
    """The rows in tree order (depth first), each with its connector prefix.

    `rows` must be in dependency order (as `step_rows` returns them). A step's parent is
    its dependency placed latest before it; dependencies placed after it (only possible
    on a cycle) or unknown do not count, so every step appears exactly once.
    """
    index = {row.name: i for i, row in enumerate(rows)}
    children: dict[str | None, list[StepRow]] = {}
    also: dict[str, tuple[str, ...]] = {}
    for i, row in enumerate(rows):
        earlier = [d for d in row.depends_on if index.get(d, i) < i]
        parent = max(earlier, key=index.__getitem__) if earlier else None
        children.setdefault(parent, []).append(row)
        also[row.name] = tuple(d for d in row.depends_on if d != parent)
    tee, elbow, pipe, blank = (
        ("├─ ", "└─ ", "│  ", "   ") if unicode else ("|- ", "`- ", "|  ", "   ")
    )
    placed: list[Placed] = []

    def visit(row: StepRow, lead: str, connector: str) -> None:
        placed.append(Placed(lead + connector, row, also[row.name]))
        kids = children.get(row.name, [])
        below = lead + ("" if not connector else (blank if connector == elbow else pipe))
        for n, kid in enumerate(kids):
            visit(kid, below, elbow if n == len(kids) - 1 else tee)

    for root in children.get(None, []):
        visit(root, "", "")
    return placed


def step_table(
    rows: Sequence[StepRow],
    now: datetime,
    style: Style,
    width: int | None = None,
) -> list[str]:
    """The steps as an aligned tree table (STEP, PHASE, AGENT, ATTEMPT, DURATION, TOKENS,
    COST, MESSAGE; TOKENS and COST are `-` until an attempt reported usage).

    AGENT is the Agent's resource name, as `kubectl get agents` and the step status say it
    (for AgentKit agents it is derived from the name they registered under).
    """
    cells: list[list[Cell]] = []
    for place in layout(rows, unicode=style.unicode):
        row = place.row
        sgr = PHASE_SGR.get(row.phase)
        name: Cell = (
            Span(place.prefix),
            Span(style.glyph(row.phase), sgr),
            Span(" " + row.name),
        )
        if place.also_after:
            name = (*name, Span(f" (also after {', '.join(place.also_after)})"))
        message = row.message or (row.reason if row.phase not in ("Succeeded",) else None)
        cells.append(
            [
                name,
                cell(row.phase, sgr),
                cell(row.agent or "-"),
                cell(row.attempt),
                cell(duration(row.duration_seconds(now), precise=True)),
                cell(row.tokens() if row.tokens() is not None else "-"),
                cell(row.cost() or "-"),
                cell(message or ""),
            ]
        )
    return render_table(HEADER, cells, style, width)


def render_workflow(
    workflow: Mapping[str, Any],
    rows: Sequence[StepRow],
    now: datetime,
    style: Style,
    width: int | None = None,
) -> str:
    """What `get` prints: the run's header, a blank line, the step tree."""
    meta = workflow.get("metadata") or {}
    spec = workflow.get("spec") or {}
    status = workflow.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    started, finished = (
        parse_time(status.get("startTime")),
        parse_time(status.get("completionTime")),
    )
    fields: list[tuple[str, str]] = [
        ("Name", str(meta.get("name", ""))),
        ("Namespace", str(meta.get("namespace", ""))),
        ("Phase", style.paint(phase, PHASE_SGR.get(phase))),
        ("Progress", str(status.get("progress") or f"0/{len(rows)}")),
    ]
    if status.get("message"):
        fields.append(("Message", str(status["message"])))
    template = (spec.get("templateRef") or {}).get("name")
    if template:
        fields.append(("Template", str(template)))
    fields.append(("Created", f"{age(parse_time(meta.get('creationTimestamp')), now)} ago"))
    if started is not None:
        fields.append(("Duration", duration(((finished or now) - started).total_seconds())))
    usage = status.get("usage") if isinstance(status.get("usage"), Mapping) else None
    tokens = usage_tokens(usage)
    if tokens is not None:
        cost = usage_cost(usage)
        fields.append(("Usage", f"{tokens} tokens" + (f", {cost}" if cost else "")))
    budget = spec.get("budget")
    if isinstance(budget, Mapping) and budget:
        fields.append(("Budget", _budget_text(budget)))
    for waiting in waiting_gates(workflow):
        fields.append(("Waiting", waiting))
    requested = pending_verbs(workflow)
    if requested:
        fields.append(("Requested", ", ".join(requested)))
    if meta.get("uid"):
        # The run's trace in the trace backend, when tracing is on (docs/observability.md).
        fields.append(("Trace", trace_id_hex(str(meta["uid"]))))
    label_width = max(len(label) for label, _ in fields) + 2
    head = [f"{label + ':':<{label_width}}{value}" for label, value in fields]
    return "\n".join([*head, "", *step_table(rows, now, style, width)]) + "\n"


def _budget_text(budget: Mapping[str, Any]) -> str:
    limits = []
    if budget.get("maxTokens") is not None:
        limits.append(f"{budget['maxTokens']} tokens")
    if budget.get("maxCost") is not None:
        limits.append(f"{budget['maxCost']:g} {budget.get('currency') or ''}".strip())
    return f"{', '.join(limits)} (on exceeded: {budget.get('onExceeded') or 'Fail'})"


def waiting_gates(workflow: Mapping[str, Any]) -> list[str]:
    """One line per step waiting for approval: who may decide, and the command to do it."""
    name = (workflow.get("metadata") or {}).get("name", "")
    lines = []
    for entry in (workflow.get("status") or {}).get("steps") or []:
        if entry.get("phase") == "WaitingForApproval":
            step = entry.get("name", "")
            lines.append(
                f"{step}: {entry.get('message') or 'waiting for approval'} "
                f"(kubectl opscore approve|reject {name} {step})"
            )
    return lines


def pending_verbs(workflow: Mapping[str, Any]) -> list[str]:
    """Verbs set in the spec that the run has not (visibly) acted on yet, or still holds."""
    spec = workflow.get("spec") or {}
    status = workflow.get("status") or {}
    phase = status.get("phase")
    finished = phase in ("Succeeded", "Failed", "Cancelled")
    verbs = []
    if spec.get("suspend") and not finished and phase != "Suspended":
        verbs.append("suspend")
    if not spec.get("suspend") and phase == "Suspended":
        verbs.append("resume")
    if spec.get("cancel") and phase != "Cancelled":
        verbs.append("cancel")
    if int(spec.get("retryGeneration") or 0) > int(status.get("retryGeneration") or 0):
        verbs.append("retry")
    return verbs
