"""Turns the run's planned spans (opscore_logic.run_trace) into OpenTelemetry spans.

Without a tracer (no OTLP endpoint: `tracing.start_tracing` returned None) every method
returns at once: no span, no id, no attribute is computed, and no `traceparent` goes into
the dispatched message.

The attempt and run spans are emitted whole, after the fact, with the start and end times
the status holds and with ids derived from the run's uid: the SDK makes ids through its
`IdGenerator`, so `tracing.PlannedIds` hands it the planned ids for the one span being started and
random ones otherwise (the dispatch spans). Their parents are given as remote span contexts
built from the same derived ids: the root span they name may be emitted minutes later, or
by another operator process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)

from opscore_logic.decision import Decision, Dispatch, WorkflowRef
from opscore_logic.run_trace import (
    SpanPlan,
    attempt_parent,
    dispatch_traceparent,
    planned_spans,
)
from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import WorkflowStatus
from opscore_operator.agentkit import DispatchResult
from opscore_operator.tracing import planned_ids

_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}


class RunSpans:
    """The operator's spans: one per attempt and per run (planned), one per dispatch (live)."""

    def __init__(self, tracer: Tracer | None) -> None:
        self._tracer = tracer

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def pass_ended(
        self,
        *,
        ref: WorkflowRef,
        before: WorkflowStatus,
        decision: Decision,
        now: datetime,
        agents: Mapping[str, AgentView] | None = None,
    ) -> None:
        """Emit the spans the written decision completes (after its status write: a pass
        whose write failed is decided again, and must not leave spans behind). `agents`:
        the pass's views, whose reports become the attempt spans' events."""
        if self._tracer is None:
            return
        phase = decision.status.phase
        if not decision.releases and not (phase is not None and phase.finished):
            return  # most passes: a dispatch, a wait; nothing ended, nothing to emit
        reports = {name: view.reports for name, view in (agents or {}).items()}
        for plan in planned_spans(
            ref=ref, before=before, decision=decision, now=now, reports=reports
        ):
            self._emit(self._tracer, plan)

    def traceparent(self, ref: WorkflowRef, dispatch: Dispatch) -> str | None:
        """The W3C trace context for the dispatched message (None when tracing is off)."""
        return None if self._tracer is None else dispatch_traceparent(ref, dispatch)

    @contextmanager
    def dispatching(
        self, ref: WorkflowRef, dispatch: Dispatch, *, server: str
    ) -> Iterator[DispatchSpan]:
        """A CLIENT span around the POST to AgentKit (its tries and their backoff), under
        the attempt's span. Live, not planned: a SIGKILL during it loses only this span."""
        if self._tracer is None:
            yield DispatchSpan(None)
            return
        parent = attempt_parent(ref, dispatch)
        context = trace.set_span_in_context(
            NonRecordingSpan(_remote(parent.trace_id, parent.span_id))
        )
        span = self._tracer.start_span(
            "POST /v1/agents/{agentId}/run",
            context=context,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.template": "/v1/agents/{agentId}/run",
                "server.address": server,
                "gen_ai.agent.name": dispatch.agent,
                "gen_ai.agent.id": dispatch.agent_id,
                "opscore.task_id": dispatch.task_id,
            },
        )
        try:
            yield DispatchSpan(span)
        finally:
            span.end()

    def _emit(self, tracer: Tracer, plan: SpanPlan) -> None:
        context = None
        if plan.parent_span_id is not None:
            parent = NonRecordingSpan(_remote(plan.trace_id, plan.parent_span_id))
            context = trace.set_span_in_context(parent)
        else:
            context = trace.set_span_in_context(trace.INVALID_SPAN)  # a root, not a child
        with planned_ids(plan.trace_id, plan.span_id):
            span = tracer.start_span(
                plan.name,
                context=context,
                kind=_KINDS[plan.kind],
                attributes=plan.attributes,
                start_time=_nanos(plan.start),
            )
        for event in plan.events:
            span.add_event(event.name, event.attributes, timestamp=_nanos(event.at))
        if plan.error is not None:
            span.set_status(Status(StatusCode.ERROR, plan.error))
            span.set_attribute("error.type", plan.error)
        span.end(end_time=_nanos(plan.end))


class DispatchSpan:
    """What the dispatch's span learns from AgentKit's answer (nothing when tracing is off)."""

    def __init__(self, span: trace.Span | None) -> None:
        self._span = span

    def record(self, result: DispatchResult) -> None:
        if self._span is None:
            return
        self._span.set_attribute("opscore.dispatch.outcome", result.outcome)
        if not result.ok:
            error = result.reason or result.outcome
            self._span.set_attribute("error.type", error)
            self._span.set_status(Status(StatusCode.ERROR, result.detail or error))


def _remote(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(
        trace_id=trace_id,
        span_id=span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
