"""The sidecar's spans: one per state report that names an Ops-Core task id, in that run's
trace under the attempt's `invoke_agent` span (a child, not an event: that span belongs to
the operator, which emits it when the attempt ends; it also carries every report of the
attempt as an event, task id or not). A report without a task id cannot be placed in a
run by the sidecar alone and makes no span.

Off unless an OTLP endpoint is configured (the `OTEL_*` rule of
opscore_logic.trace_config): then `ReportSpans` does nothing and costs one attribute
check per report. On, spans leave through a `BatchSpanProcessor` (an export thread, a
bounded queue), so a slow or dead collector never delays an answer to an agent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, Tracer

from opscore_logic.agent_model import AgentReport
from opscore_logic.trace_config import trace_export
from opscore_logic.trace_ids import attempt_span_id, parse_task_id, trace_id_for_run

logger = logging.getLogger("opscore.sidecar.tracing")

ROUTE = "/v1/opscore/agent/{agentId}/state"
STOP_SECONDS = 3.0


class ReportSpans:
    """Emits a report's span; does nothing without a tracer."""

    def __init__(self, tracer: Tracer | None = None, provider: TracerProvider | None = None):
        self._tracer = tracer
        self._provider = provider

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def configured(cls, env: Mapping[str, str] | None = None) -> ReportSpans:
        """From the `OTEL_*` variables; never raises (tracing stays off, logged why)."""
        settings = os.environ if env is None else env
        decision = trace_export(settings)
        if not decision.enabled:
            logger.info("tracing off: %s", decision.why)
            return cls()
        try:
            provider = TracerProvider(
                resource=Resource.create(
                    {SERVICE_NAME: "opscore-sidecar", SERVICE_INSTANCE_ID: str(uuid.uuid4())}
                ),
                shutdown_on_exit=False,  # `stop` bounds it; see opscore_operator.tracing
            )
            delay = settings.get("OTEL_BSP_SCHEDULE_DELAY")
            provider.add_span_processor(
                BatchSpanProcessor(
                    OTLPSpanExporter(endpoint=decision.traces_url),
                    schedule_delay_millis=float(delay) if delay else None,
                )
            )
        except Exception as exc:
            logger.warning("tracing off: the OpenTelemetry SDK refused its settings: %s", exc)
            return cls()
        logger.info("tracing on: %s", decision.why)
        return cls(provider.get_tracer("opscore.sidecar"), provider)

    def stored(self, agent_id: str, report: AgentReport, *, fresh: bool, done: datetime) -> None:
        """The report is durable (`fresh`: it was new, else an exact duplicate)."""
        if self._tracer is None:
            return
        task_id = report.details.get("opscore_task_id")
        task = parse_task_id(task_id) if isinstance(task_id, str) else None
        if task is None or task_id is None:
            return
        parent = SpanContext(
            trace_id=trace_id_for_run(task.uid),
            span_id=attempt_span_id(task_id),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        span = self._tracer.start_span(
            f"POST {ROUTE}",
            context=trace.set_span_in_context(NonRecordingSpan(parent)),
            kind=SpanKind.SERVER,
            start_time=_nanos(report.received_at),
            attributes={
                "http.request.method": "POST",
                "http.route": ROUTE,
                "http.response.status_code": 202,
                "gen_ai.agent.id": agent_id,
                "opscore.task_id": task_id,
                "opscore.step": task.step,
                "opscore.attempt": task.attempt,
                "opscore.report.state": report.state,
                "opscore.report.timestamp": report.timestamp.isoformat(),
                "opscore.report.duplicate": not fresh,
            },
        )
        span.end(end_time=_nanos(done))

    async def stop(self) -> None:
        """Export what is queued, within STOP_SECONDS (a daemon thread: a dead collector
        holds up neither the event loop nor the process's exit)."""
        provider = self._provider
        if provider is None:
            return
        finished = threading.Event()

        def shut_down() -> None:
            try:
                provider.shutdown()
            finally:
                finished.set()

        threading.Thread(target=shut_down, name="opscore-tracing-stop", daemon=True).start()
        if not await asyncio.to_thread(finished.wait, STOP_SECONDS):
            logger.warning("tracing: queued spans not exported within %.0fs", STOP_SECONDS)


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
