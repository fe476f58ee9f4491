"""The operator's spans keep their planned ids and parents (so spans of one run made by
different processes meet in one trace), and without a tracer nothing is made at all."""

from __future__ import annotations

from engine_harness import REF, T0, agent, done, entry, once, seconds, spec, step
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from opscore_logic.trace_ids import attempt_span_id, run_span_id, trace_id_for_run
from opscore_logic.workflow_model import WorkflowStatus
from opscore_operator.agentkit import DispatchResult
from opscore_operator.run_spans import RunSpans
from opscore_operator.tracing import PlannedIds

ONE = spec(step("a", agent="x"))


def _recording() -> tuple[RunSpans, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=PlannedIds(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return RunSpans(provider.get_tracer("test")), exporter


def test_a_finished_run_exports_its_root_and_attempt_spans_with_the_derived_ids() -> None:
    spans, exporter = _recording()
    first = once(ONE, WorkflowStatus(), [agent("x")], T0)
    task = entry(first.status, "a").task_id or ""
    last = once(ONE, first.status, [agent("x", done(task, T0 + seconds(2)))], T0 + seconds(2))
    spans.pass_ended(ref=REF, before=first.status, decision=last, now=T0 + seconds(2))
    by_name = {span.name: span for span in exporter.get_finished_spans()}
    root, attempt = by_name["invoke_workflow wf"], by_name["invoke_agent x"]
    assert root.context is not None
    assert attempt.context is not None
    assert root.context.trace_id == attempt.context.trace_id == trace_id_for_run(REF.uid)
    assert root.context.span_id == run_span_id(REF.uid)
    assert root.parent is None
    assert attempt.context.span_id == attempt_span_id(task)
    assert attempt.parent is not None
    assert attempt.parent.span_id == root.context.span_id
    assert attempt.start_time == int(T0.timestamp() * 1e9)
    assert attempt.kind is SpanKind.CLIENT


def test_the_dispatch_is_a_client_span_under_its_attempt_and_records_a_refusal() -> None:
    spans, exporter = _recording()
    (dispatch,) = once(ONE, WorkflowStatus(), [agent("x")], T0).dispatches
    with spans.dispatching(REF, dispatch, server="agentkit") as span:
        span.record(DispatchResult("not_found", "no such agent"))
    (post,) = exporter.get_finished_spans()
    assert post.kind is SpanKind.CLIENT
    assert post.parent is not None
    assert post.parent.span_id == attempt_span_id(dispatch.task_id)
    assert post.status.status_code is StatusCode.ERROR
    assert post.attributes is not None
    assert post.attributes["error.type"] == "not_found"
    assert spans.traceparent(REF, dispatch) is not None


def test_without_a_tracer_nothing_is_made_and_no_traceparent_is_sent() -> None:
    spans = RunSpans(None)
    (dispatch,) = once(ONE, WorkflowStatus(), [agent("x")], T0).dispatches
    with spans.dispatching(REF, dispatch, server="agentkit") as span:
        span.record(DispatchResult("scheduled"))
    assert spans.traceparent(REF, dispatch) is None
    assert not spans.enabled
