"""The dashboard's JSON: Kubernetes objects cut down to what the page draws.

The browser gets small, flat documents (no managedFields, no specs it does not draw), and
the workflow list comes as one page of summaries plus counts, never the whole namespace:
with 1,000 runs present the page still parses and draws 50 rows per refresh. Pure
functions over the raw objects, so they are tested without a server or a browser.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from opscore_logic.base import parse_time
from opscore_logic.run_view import StepRow, step_rows, usage_cost, usage_tokens
from opscore_logic.trace_ids import trace_id_hex

Body = Mapping[str, Any]
Json = dict[str, Any]
FINISHED = ("Succeeded", "Failed", "Cancelled")
MAX_PAGE = 200
MAX_EVENTS = 200
# Not a run's phase: the phase filter's name for "some step waits for approval", since a
# run waiting for a person is Running (docs/approvals.md).
AWAITING_APPROVAL = "WaitingForApproval"


def workflow_summary(workflow: Body) -> Json:
    """One row of the workflow list."""
    meta = workflow.get("metadata") or {}
    spec = workflow.get("spec") or {}
    status = workflow.get("status") or {}
    steps = [s for s in status.get("steps") or [] if isinstance(s, Mapping)]
    total = len(spec.get("steps") or []) or len(steps)
    return {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "phase": status.get("phase") or "Pending",
        "progress": status.get("progress") or f"0/{total}",
        "message": status.get("message"),
        "created": meta.get("creationTimestamp"),
        "started": status.get("startTime"),
        "finished": status.get("completionTime"),
        "template": (spec.get("templateRef") or {}).get("name"),
        "steps": total,
        "stepPhases": dict(Counter(str(s.get("phase") or "Pending") for s in steps)),
        "awaitingApproval": [
            str(s.get("name")) for s in steps if s.get("phase") == AWAITING_APPROVAL
        ],
    }


def sort_newest_first(summaries: Iterable[Json]) -> list[Json]:
    """Newest run first, the order people look for runs in (creation times have second
    precision; within a second, names descending, so `run-9` precedes `run-8`)."""
    return sorted(summaries, key=lambda s: (str(s["created"] or ""), str(s["name"])), reverse=True)


def workflow_page(
    summaries: Sequence[Json],
    *,
    offset: int = 0,
    limit: int = 50,
    phase: str | None = None,
    query: str | None = None,
) -> Json:
    """A page of `summaries` (already sorted), filtered by phase and name substring.

    `phases` counts the whole namespace (for the filter's labels), `total` the matches.
    The pseudo-phase `WaitingForApproval` selects (and counts) the runs with a step
    waiting for approval.
    """
    limit = max(1, min(limit, MAX_PAGE))
    needle = (query or "").strip().lower()
    matches = [
        s for s in summaries if _in_phase(s, phase) and (not needle or needle in str(s["name"]))
    ]
    offset = max(0, min(offset, max(len(matches) - 1, 0)))
    phases = Counter(str(s["phase"]) for s in summaries)
    waiting = sum(1 for s in summaries if s.get("awaitingApproval"))
    if waiting:
        phases[AWAITING_APPROVAL] = waiting
    return {
        "total": len(matches),
        "offset": offset,
        "limit": limit,
        "items": matches[offset : offset + limit],
        "phases": dict(phases),
        "all": len(summaries),
    }


def _in_phase(summary: Json, phase: str | None) -> bool:
    if not phase:
        return True
    if phase == AWAITING_APPROVAL:
        return bool(summary.get("awaitingApproval"))
    return bool(summary["phase"] == phase)


def step_json(row: StepRow, now: datetime, agent_names: Mapping[str, str]) -> Json:
    return {
        "name": row.name,
        "dependsOn": list(row.depends_on),
        "phase": row.phase,
        "agent": row.agent,
        "agentName": agent_names.get(row.agent, row.agent) if row.agent else None,
        "attempt": row.attempt,
        "startedAt": _iso(row.started_at),
        "finishedAt": _iso(row.finished_at),
        "durationSeconds": _round(row.duration_seconds(now)),
        "reason": row.reason,
        "message": row.message,
        "tokens": row.tokens(),
        "cost": row.cost(),
    }


def workflow_detail(
    workflow: Body,
    template: Body | None,
    agent_names: Mapping[str, str],
    now: datetime,
    *,
    jaeger_url: str | None = None,
) -> Json:
    """Everything the detail view draws: the run, and its steps in dependency order.
    `jaeger_url` (OPSCORE_JAEGER_URL): the run's trace is linked there when given."""
    spec = workflow.get("spec") or {}
    status = workflow.get("status") or {}
    started = parse_time(status.get("startTime"))
    finished = parse_time(status.get("completionTime"))
    detail = workflow_summary(workflow)
    detail.update(
        {
            "namespace": (workflow.get("metadata") or {}).get("namespace"),
            "durationSeconds": _round(((finished or now) - started).total_seconds())
            if started
            else None,
            "suspend": bool(spec.get("suspend")),
            "cancel": bool(spec.get("cancel")),
            "retryGeneration": int(spec.get("retryGeneration") or 0),
            "tokens": usage_tokens(status.get("usage")),
            "cost": usage_cost(status.get("usage")),
            "steps": [step_json(row, now, agent_names) for row in step_rows(workflow, template)],
            "now": _iso(now),
        }
    )
    uid = (workflow.get("metadata") or {}).get("uid")
    trace_id = trace_id_hex(str(uid)) if uid else None
    detail["traceId"] = trace_id
    detail["traceUrl"] = (
        f"{jaeger_url.rstrip('/')}/trace/{trace_id}" if jaeger_url and trace_id else None
    )
    return detail


def agent_json(agent: Body, now: datetime) -> Json:
    meta = agent.get("metadata") or {}
    spec = agent.get("spec") or {}
    status = agent.get("status") or {}
    ready = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        {},
    )
    last_seen = parse_time(status.get("lastSeen"))
    return {
        "name": meta.get("name"),
        "agentName": spec.get("agentName") or meta.get("name"),
        "agentId": spec.get("agentId") or meta.get("name"),
        "capabilities": list(spec.get("capabilities") or []),
        "paused": bool(spec.get("paused")),
        "state": status.get("state") or "Unknown",
        "currentTask": status.get("currentTask"),
        "activeTasks": int(status.get("activeTasks") or 0),
        "tasksSucceeded": int(status.get("tasksSucceeded") or 0),
        "tasksFailed": int(status.get("tasksFailed") or 0),
        "lastSeen": status.get("lastSeen"),
        "lastSeenSecondsAgo": _round((now - last_seen).total_seconds()) if last_seen else None,
        "lastError": status.get("lastError"),
        "ready": {
            "status": ready.get("status") or "Unknown",
            "reason": ready.get("reason"),
            "message": ready.get("message"),
        },
    }


def agent_names(agents: Iterable[Body]) -> dict[str, str]:
    """Agent resource name -> the name people know (spec.agentName)."""
    names = {}
    for agent in agents:
        name = (agent.get("metadata") or {}).get("name")
        if name:
            names[str(name)] = str((agent.get("spec") or {}).get("agentName") or name)
    return names


def event_json(events: Iterable[Body], uid: str | None = None) -> list[Json]:
    """A run's Events, oldest first, the latest MAX_EVENTS. With `uid`, only that run's:
    a workflow deleted and created again under the same name has its own history."""
    rows: list[tuple[tuple[str, int], Json]] = []
    for event in events:
        involved = event.get("involvedObject") or {}
        if uid and involved.get("uid") not in (None, uid):
            continue
        meta = event.get("metadata") or {}
        when = (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("firstTimestamp")
            or meta.get("creationTimestamp")
        )
        order = (str(when or ""), _int(meta.get("resourceVersion")))
        rows.append(
            (
                order,
                {
                    "time": when,
                    "type": event.get("type"),
                    "reason": event.get("reason"),
                    "message": event.get("message"),
                    "count": int(event.get("count") or 1),
                },
            )
        )
    # Same-second events keep the order the API server stored them in.
    rows.sort(key=lambda r: r[0])
    return [row for _, row in rows[-MAX_EVENTS:]]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _round(seconds: float | None) -> float | None:
    return round(seconds, 2) if seconds is not None else None
