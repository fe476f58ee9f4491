"""A report naming an Ops-Core task id is a span under that attempt's span, in its run's
trace; any other report makes none; without an endpoint nothing is made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opscore_logic.agent_model import AgentReport
from opscore_logic.trace_ids import attempt_span_id, trace_id_for_run
from opscore_sidecar.tracing import ReportSpans

UID = "6f1c2a4e-9b7d-4c3e-8a21-0d5e6f7a8b9c"
TASK = f"{UID}:collect:0:1"
NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


def _report(**details: object) -> AgentReport:
    return AgentReport(state="idle", timestamp=NOW, received_at=NOW, details=dict(details))


def _recording() -> tuple[ReportSpans, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return ReportSpans(provider.get_tracer("test")), exporter


def test_a_report_with_a_task_id_is_a_span_under_its_attempt() -> None:
    spans, exporter = _recording()
    spans.stored("agent-1", _report(opscore_task_id=TASK), fresh=True, done=NOW + timedelta(1))
    (span,) = exporter.get_finished_spans()
    assert span.context is not None
    assert span.context.trace_id == trace_id_for_run(UID)
    assert span.parent is not None
    assert span.parent.span_id == attempt_span_id(TASK)
    assert span.attributes is not None
    assert span.attributes["opscore.report.state"] == "idle"


def test_a_report_without_an_opscore_task_id_makes_no_span() -> None:
    spans, exporter = _recording()
    spans.stored("agent-1", _report(), fresh=True, done=NOW)
    spans.stored("agent-1", _report(opscore_task_id="my-own-id"), fresh=True, done=NOW)
    assert exporter.get_finished_spans() == ()


def test_without_an_endpoint_the_sidecar_makes_no_spans() -> None:
    spans = ReportSpans.configured({})
    spans.stored("agent-1", _report(opscore_task_id=TASK), fresh=True, done=NOW)  # no error
    assert not spans.enabled
