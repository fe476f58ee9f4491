"""The bounded log of an agent's state reports kept in `status.reports`.

Why a policy and not just "keep the newest N": the operator infers task outcomes from what
an agent reported since a dispatch (see `outcomes.py`), and an agent that sends heartbeats
every few seconds would otherwise push the one `error` or the one report carrying
`opscore_task_id`/`output` out of the window before the operator has read it. So when the
log is over its limit, reports are dropped in this order, oldest first within each tier:

1. an ordinary report whose normalised state equals the next report's (a repeated
   heartbeat: the newer one says the same thing);
2. any ordinary report;
3. a significant report (an error, or one with `opscore_task_id` or `output` in its
   details) whose normalised state equals the next report's;
4. the oldest report.

The newest report is never dropped: it is the agent's current state.

Merging is idempotent: an exact duplicate (same state, timestamp and details; `receivedAt`
does not count) is kept once, the copy already stored (else the first new one), so a report
delivered twice, or merged twice after a retried write, changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from opscore_logic.agent_model import MAX_REPORTS, AgentReport, AgentState
from opscore_logic.lifecycle import normalise_state

SIGNIFICANT_DETAIL_KEYS = ("opscore_task_id", "output")


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

    excess = _coalesce(merged, excess, eligible=_ordinary)
    excess = _drop_oldest(merged, excess, eligible=_ordinary)
    excess = _coalesce(merged, excess, eligible=_anything)
    if excess > 0:
        del merged[:excess]
    return merged


def _ordinary(report: AgentReport) -> bool:
    return not is_significant(report)


def _anything(report: AgentReport) -> bool:
    return True


def _coalesce(
    reports: list[AgentReport], excess: int, *, eligible: Callable[[AgentReport], bool]
) -> int:
    """Drop, oldest first, eligible reports whose normalised state equals the next one's.

    One left-to-right pass is the same as repeatedly dropping the oldest candidate: removing
    report i only changes which report follows i-1, so the scan steps back one place.
    Never touches the last report (it has no next). Returns the excess still to drop.
    """
    states = [normalise_state(r.state) for r in reports]
    i = 0
    while excess > 0 and i < len(reports) - 1:
        if states[i] == states[i + 1] and eligible(reports[i]):
            del reports[i]
            del states[i]
            excess -= 1
            i = max(i - 1, 0)
        else:
            i += 1
    return excess


def _drop_oldest(
    reports: list[AgentReport], excess: int, *, eligible: Callable[[AgentReport], bool]
) -> int:
    """Drop the oldest eligible reports (never the last one). Returns the excess left.

    Dropping an ordinary report here cannot create a new tier-1 candidate: every report
    before it is significant, so tiers need not be re-run after each drop.
    """
    kept: list[AgentReport] = []
    last = len(reports) - 1
    for index, report in enumerate(reports):
        if excess > 0 and index < last and eligible(report):
            excess -= 1
            continue
        kept.append(report)
    reports[:] = kept
    return excess
