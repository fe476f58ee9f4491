"""The bounded log of an agent's state reports kept in `status.reports`.

Why a policy and not just "keep the newest N": the operator infers task outcomes from what
an agent reported since a dispatch (see `outcomes.py`), and an agent that sends heartbeats
every few seconds would otherwise push the one `error` or the one report carrying
`opscore_task_id`/`output` out of the window before the operator has read it. So when the
log is over its limit, reports are dropped in this order, oldest first within each tier:

1. an ordinary report (a heartbeat: no error, no `opscore_task_id`, no `output`) followed
   by another ordinary one of the same normalised state (the newer one says the same
   thing);
2. any ordinary report but the newest ordinary one;
3. a significant report followed by one of the same normalised state about the same task
   (the same `opscore_task_id`, or both without one);
4. a report about a task (by `opscore_task_id`), not an error, with a newer report about
   the same task (the operator reads a task's errors and its newest report);
5. the oldest report.

The newest report is never dropped: it is the agent's current state. Nor is the newest
ordinary one before tier 5: a task whose agent sends no task id is read from the newest
report without one (`outcomes.py`), so a heartbeat may only give way to a newer
heartbeat, never to a report about another task.

How long the log is: `report_limit`, two entries per task slot and two more (4 for an
agent that runs one task at a time). Every write of the list is one Agent status PATCH
whose API server CPU grows with the list, and the list is only a buffer between the
operator's passes: each task that can end before the operator's next look needs room for
its significant reports (a correlated agent sends two per task, `active` and `idle` with
the task id), plus the newest heartbeat and the newest report.
tests/unit/agents/test_report_burst.py checks that outcomes read from this log equal
those read from an unbounded one under bursts of heartbeats and task ends. The cap,
MAX_REPORTS = 64, is reached by agents of more than 31 slots: for them, more task ends
than that between two operator passes can push the oldest out (the step then times out
and is retried, as for a lost report).

Merging is idempotent: an exact duplicate (same state, timestamp and details; `receivedAt`
does not count) is kept once, the copy already stored (else the first new one), so a report
delivered twice, or merged twice after a retried write, changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from opscore_logic.agent_model import MAX_REPORTS, MIN_REPORTS, AgentReport, AgentState
from opscore_logic.lifecycle import normalise_state

SIGNIFICANT_DETAIL_KEYS = ("opscore_task_id", "output")


def report_limit(max_concurrent_tasks: int) -> int:
    """How many reports the log of an agent with this many task slots keeps."""
    return min(MAX_REPORTS, max(MIN_REPORTS, 2 * max_concurrent_tasks + 2))


def _aware(moment: datetime) -> datetime:
    """Naive times are UTC (what the sidecar stores); comparing naive and aware would raise."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _order(report: AgentReport) -> tuple[datetime, datetime, str, str]:
    """(timestamp, received_at), then state and details: a total order, so the result does
    not depend on the order the inputs came in (which keeps merging idempotent)."""
    details = json.dumps(report.details, sort_keys=True, default=str)
    return _aware(report.timestamp), _aware(report.received_at), report.state, details


def same_report(first: AgentReport, second: AgentReport) -> bool:
    """Exact duplicates: same state, timestamp and details (`receivedAt` does not count).

    Details compare by value (`==`), so a report read back from the API server, which
    writes `1.0` as `1`, still equals the one the agent sent.
    """
    return (
        first.state == second.state
        and _aware(first.timestamp) == _aware(second.timestamp)
        and first.details == second.details
    )


def is_significant(report: AgentReport) -> bool:
    """Whether the operator may need this report to decide a task's outcome."""
    if normalise_state(report.state) is AgentState.ERROR:
        return True
    return any(key in report.details for key in SIGNIFICANT_DETAIL_KEYS)


def merge_reports(
    existing: Iterable[AgentReport],
    new: Iterable[AgentReport],
    *,
    limit: int = MAX_REPORTS,
) -> list[AgentReport]:
    """`existing` plus `new`, deduplicated, ordered by (timestamp, received_at), trimmed.

    Pure and deterministic; see the module docstring for what is dropped first.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    seen: dict[tuple[str, datetime], list[AgentReport]] = {}
    merged: list[AgentReport] = []
    for report in [*existing, *new]:
        bucket = seen.setdefault((report.state, _aware(report.timestamp)), [])
        if not any(same_report(report, other) for other in bucket):
            bucket.append(report)
            merged.append(report)
    merged.sort(key=_order)
    excess = len(merged) - limit
    if excess <= 0:
        return merged

    excess = _coalesce(merged, excess, repeats=_repeated_heartbeat)
    excess = _drop_oldest_ordinary(merged, excess)
    excess = _coalesce(merged, excess, repeats=_repeated_about_the_same_task)
    excess = _drop_superseded(merged, excess)
    if excess > 0:
        del merged[:excess]
    return merged


def _repeated_heartbeat(older: AgentReport, newer: AgentReport) -> bool:
    return not is_significant(older) and not is_significant(newer)


def _repeated_about_the_same_task(older: AgentReport, newer: AgentReport) -> bool:
    return (
        is_significant(older)
        and is_significant(newer)
        and older.details.get("opscore_task_id") == newer.details.get("opscore_task_id")
    )


def _coalesce(
    reports: list[AgentReport],
    excess: int,
    *,
    repeats: Callable[[AgentReport, AgentReport], bool],
) -> int:
    """Drop, oldest first, reports the next one repeats: the same normalised state, and
    `repeats(report, next)`.

    One left-to-right pass is the same as repeatedly dropping the oldest candidate: removing
    report i only changes which report follows i-1, so the scan steps back one place.
    Never touches the last report (it has no next). Returns the excess still to drop.
    """
    states = [normalise_state(r.state) for r in reports]
    i = 0
    while excess > 0 and i < len(reports) - 1:
        if states[i] == states[i + 1] and repeats(reports[i], reports[i + 1]):
            del reports[i]
            del states[i]
            excess -= 1
            i = max(i - 1, 0)
        else:
            i += 1
    return excess


def _drop_superseded(reports: list[AgentReport], excess: int) -> int:
    """Drop, oldest first, reports about a task (by `opscore_task_id`) that a newer report
    about the same task follows, errors excepted: what the operator reads of that task
    (any error, else the newest report) is the same without them. Returns the excess left."""
    newest: dict[str, int] = {}
    for index, report in enumerate(reports):
        task = report.details.get("opscore_task_id")
        if isinstance(task, str):
            newest[task] = index
    drop: set[int] = set()
    for index, report in enumerate(reports):
        if len(drop) >= excess:
            break
        task = report.details.get("opscore_task_id")
        if (
            isinstance(task, str)
            and newest[task] > index
            and normalise_state(report.state) is not AgentState.ERROR
        ):
            drop.add(index)
    reports[:] = [report for i, report in enumerate(reports) if i not in drop]
    return excess - len(drop)


def _drop_oldest_ordinary(reports: list[AgentReport], excess: int) -> int:
    """Drop the oldest ordinary reports, never the last report nor the newest ordinary
    one. Returns the excess left.

    Dropping an ordinary report here cannot create a new tier-1 candidate: no ordinary
    report is left before it, so tiers need not be re-run after each drop.
    """
    ordinary = [i for i, report in enumerate(reports) if not is_significant(report)]
    keep = {len(reports) - 1, *ordinary[-1:]}
    drop = {i for i in ordinary if i not in keep}
    drop = set(sorted(drop)[:excess])
    reports[:] = [report for i, report in enumerate(reports) if i not in drop]
    return excess - len(drop)
