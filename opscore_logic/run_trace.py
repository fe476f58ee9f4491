"""The spans of a workflow run, planned from what one reconcile pass saw and decided.

Which process emits a span does not matter, only what the Workflow's status says: an
attempt's `invoke_agent` span is planned in the pass that sees its end (whichever operator
runs it, before or after a SIGKILL or a leader change), from the dispatch time stored in
status to the report that ended it; the run's `invoke_workflow` span in the pass that
finishes the run. Ids come from `trace_ids`, so every span lands in the run's one trace
under the run's root span without anything remembered in memory. Nothing here touches
OpenTelemetry: the operator turns plans into spans (`opscore_operator.run_spans`).

Names and attributes follow the OpenTelemetry GenAI agent-span conventions where they fit
(`gen_ai.operation.name`, `gen_ai.agent.name`, `gen_ai.workflow.name`,
`gen_ai.conversation.id`, `gen_ai.usage.*`); what they have no name for is `opscore.*`
(docs/observability.md, "Traces", says where and why this departs from them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from opscore_logic.agent_model import AgentReport
from opscore_logic.attribution import AttemptUsage
from opscore_logic.decision import Decision, Dispatch, Release, WorkflowRef
from opscore_logic.reasons import StepReason
from opscore_logic.trace_ids import (
    attempt_span_id,
    parse_task_id,
    run_span_id,
    trace_id_for_run,
    traceparent,
)
from opscore_logic.usage import Usage
from opscore_logic.workflow_model import StepStatus, WorkflowStatus

AttributeValue = str | int | float | bool
SpanKind = Literal["internal", "client"]


@dataclass(frozen=True, slots=True)
class EventPlan:
    """A span event: one state report the agent sent during the attempt."""

    name: str
    at: datetime
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanPlan:
    """One span to emit whole: ids, times and attributes are all known up front."""

    name: str
    trace_id: int
    span_id: int
    parent_span_id: int | None
    kind: SpanKind
    start: datetime
    end: datetime
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    #: set for a failed attempt or run: the span's status is ERROR with this description
    error: str | None = None
    events: tuple[EventPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class ParentRef:
    """Where a live span (the dispatch's POST) hangs: its attempt's span in its run's trace."""

    trace_id: int
    span_id: int


def attempt_parent(ref: WorkflowRef, dispatch: Dispatch) -> ParentRef:
    return ParentRef(trace_id_for_run(ref.uid), attempt_span_id(dispatch.task_id))


def dispatch_traceparent(ref: WorkflowRef, dispatch: Dispatch) -> str:
    """The W3C `traceparent` an agent continues the trace from: its attempt's span."""
    parent = attempt_parent(ref, dispatch)
    return traceparent(parent.trace_id, parent.span_id)


def planned_spans(
    *,
    ref: WorkflowRef,
    before: WorkflowStatus,
    decision: Decision,
    now: datetime,
    reports: Mapping[str, Sequence[AgentReport]] | None = None,
) -> list[SpanPlan]:
    """The spans this pass completes: one per attempt it ended, and the run's once it
    finished. `before` is the status the pass started from (it holds each ending attempt's
    dispatch time and number); `decision.status` is the one just written. `reports`, per
    agent name, become the attempt spans' events: each report the sidecar received between
    the dispatch and the end that names the attempt's task id or no task id at all."""
    plans = [
        plan
        for plan in (
            _attempt_span(ref, before, decision.status, release, now, reports or {})
            for release in decision.releases
        )
        if plan is not None
    ]
    run = _run_span(ref, before, decision.status)
    if run is not None:
        plans.append(run)
    return plans


def _attempt_span(
    ref: WorkflowRef,
    before: WorkflowStatus,
    after: WorkflowStatus,
    release: Release,
    now: datetime,
    reports: Mapping[str, Sequence[AgentReport]],
) -> SpanPlan | None:
    started = _entry_with_task(before, release.task_id)
    ended = _entry_with_task(after, release.task_id)
    if ended is not None and ended.reason is StepReason.DISPATCH_UNCONFIRMED:
        return None  # not over: sent again under the same task id, one span at its real end
    if started is None or started.dispatched_at is None:
        return None  # never seen running (a status written by another version): no start
    task = parse_task_id(release.task_id)
    reason = ended.reason if ended is not None else None
    end = release.reported_at or now
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": release.agent,
        "gen_ai.conversation.id": ref.uid,
        "k8s.namespace.name": ref.namespace,
        "opscore.workflow": ref.name,
        "opscore.step": release.step or started.name,
        "opscore.attempt": started.attempt,
        "opscore.task_id": release.task_id,
        "opscore.outcome": release.result,
        "opscore.retry_generation": task.generation if task is not None else 0,
    }
    if reason is not None:
        attributes["opscore.reason"] = str(reason)
    attributes.update(_usage_attributes(release.usage))
    return SpanPlan(
        name=f"invoke_agent {release.agent}",
        trace_id=trace_id_for_run(ref.uid),
        span_id=attempt_span_id(release.task_id),
        parent_span_id=run_span_id(ref.uid, task.generation if task is not None else 0),
        kind="client",
        start=started.dispatched_at,
        end=max(end, started.dispatched_at),
        attributes=attributes,
        error=None if release.result == "succeeded" else str(reason or release.result),
        events=_report_events(
            reports.get(release.agent, ()), release.task_id, started.dispatched_at, end
        ),
    )


def _report_events(
    reports: Sequence[AgentReport], task_id: str, since: datetime, until: datetime
) -> tuple[EventPlan, ...]:
    events = []
    for report in reports:
        named = report.details.get("opscore_task_id")
        if named not in (None, task_id) or not since <= report.received_at <= until:
            continue
        attributes: dict[str, AttributeValue] = {
            "opscore.report.state": report.state,
            "opscore.report.timestamp": report.timestamp.isoformat(),
        }
        if named is not None:
            attributes["opscore.task_id"] = task_id
        events.append(EventPlan("state_report", report.received_at, attributes))
    return tuple(sorted(events, key=lambda event: event.at))


def _run_span(ref: WorkflowRef, before: WorkflowStatus, after: WorkflowStatus) -> SpanPlan | None:
    if after.phase is None or not after.phase.finished:
        return None
    if before.phase is not None and before.phase.finished:
        return None  # finished in an earlier pass: its span was planned then
    start = after.start_time or ref.created
    end = after.completion_time
    if start is None or end is None:
        return None
    reason = _succeeded_reason(after)
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": ref.name,
        "gen_ai.conversation.id": ref.uid,
        "k8s.namespace.name": ref.namespace,
        "opscore.workflow": ref.name,
        "opscore.phase": str(after.phase),
        "opscore.retry_generation": after.retry_generation,
    }
    if after.progress:
        attributes["opscore.progress"] = after.progress
    if reason:
        attributes["opscore.reason"] = reason
    if after.usage is not None:
        attributes.update(_total_attributes(after.usage))
    return SpanPlan(
        name=f"invoke_workflow {ref.name}",
        trace_id=trace_id_for_run(ref.uid),
        span_id=run_span_id(ref.uid, after.retry_generation),
        parent_span_id=None,
        kind="internal",
        start=start,
        end=max(end, start),
        attributes=attributes,
        error=None if after.phase.value == "Succeeded" else (reason or str(after.phase)),
    )


def _entry_with_task(status: WorkflowStatus, task_id: str) -> StepStatus | None:
    return next((entry for entry in status.steps if entry.task_id == task_id), None)


def _succeeded_reason(status: WorkflowStatus) -> str | None:
    condition = next((c for c in status.conditions if c.type == "Succeeded"), None)
    return None if condition is None else condition.reason


def _usage_attributes(used: AttemptUsage) -> dict[str, AttributeValue]:
    if not used.attributed:
        return {}
    attributes = _total_attributes(used.attributed_total())
    models = sorted({m.model for m in used.attributed if m.model})
    if len(models) == 1:
        attributes["gen_ai.response.model"] = models[0]
    elif models:
        attributes["opscore.usage.models"] = ",".join(models)
    return attributes


def _total_attributes(usage: Usage) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "opscore.usage.total_tokens": usage.total_tokens,
    }
    for currency, amount in usage.cost.items():
        attributes[f"opscore.usage.cost.{currency}"] = amount
    return attributes
