"""The operator's OpenTelemetry tracer: a real one only when an OTLP endpoint is set.

`trace_export` (opscore_logic.trace_config) reads the standard `OTEL_*` variables. Without
an endpoint this returns None and nothing of the SDK is started: `run_spans` then does
nothing at all. With one, spans go through a `BatchSpanProcessor`: `end()` only puts the
span in a bounded in-memory queue (2048 by default, `OTEL_BSP_MAX_QUEUE_SIZE`), and a
thread of the SDK exports every `OTEL_BSP_SCHEDULE_DELAY` ms. So a slow or unreachable
collector never blocks or slows a reconcile pass: the exporter's thread retries, then drops
that batch (logged by the SDK), and a full queue drops new spans. A SIGKILL loses what the
queue held (at most one schedule delay's worth); a normal stop flushes it, bounded.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Tracer

from opscore_logic.trace_config import trace_export

logger = logging.getLogger("opscore.tracing")

INSTRUMENTATION_NAME = "opscore.operator"
FLUSH_ON_STOP_SECONDS = 3.0

_planned: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "opscore_planned_span_ids", default=None
)


class PlannedIds(IdGenerator):
    """The SDK makes every span's ids through its provider's generator: this one hands out
    the ids `planned_ids` names while a planned span is started (spans whose ids derive
    from the run, see opscore_logic.trace_ids), and random ones for every other span."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        planned = _planned.get()
        return planned[1] if planned is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        planned = _planned.get()
        return planned[0] if planned is not None else self._random.generate_trace_id()


@contextmanager
def planned_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """Within the block, the span started gets these ids (the trace id only if it is a root;
    a child takes its parent's)."""
    token = _planned.set((trace_id, span_id))
    try:
        yield
    finally:
        _planned.reset(token)


def start_tracing(
    service_name: str, *, env: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """A provider exporting to the configured OTLP endpoint, or None (tracing off). Never
    raises for a bad configuration: it logs why tracing is off and the operator runs on."""
    settings = os.environ if env is None else env
    decision = trace_export(settings)
    if not decision.enabled:
        logger.info("tracing off: %s", decision.why)
        return None
    try:
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win.
        provider = TracerProvider(
            resource=Resource.create(
                {SERVICE_NAME: service_name, SERVICE_INSTANCE_ID: str(uuid.uuid4())}
            ),
            id_generator=PlannedIds(),
            # No shutdown at exit of its own: stop_tracing bounds it (an atexit one would
            # hold the process up while the exporter retries a dead collector).
            shutdown_on_exit=False,
        )
        # Endpoint and batch delay from `settings` (the SDK would read os.environ; headers,
        # timeout, compression and the queue sizes it does read from there).
        delay = settings.get("OTEL_BSP_SCHEDULE_DELAY")
        exporter = OTLPSpanExporter(endpoint=decision.traces_url)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=float(delay) if delay else None)
        )
    except Exception as exc:  # a malformed OTEL_* value the SDK refuses
        logger.warning("tracing off: the OpenTelemetry SDK refused its settings: %s", exc)
        return None
    logger.info("tracing on: %s", decision.why)
    return provider


def tracer_of(provider: TracerProvider | None) -> Tracer | None:
    return None if provider is None else provider.get_tracer(INSTRUMENTATION_NAME)


async def stop_tracing(provider: TracerProvider | None) -> None:
    """Export what is queued and stop the exporter's thread, within a few seconds: an
    unreachable collector must not hold up a shutdown (what is left is dropped)."""
    if provider is None:
        return
    # shutdown() exports the queue first and blocks while the exporter retries (tens of
    # seconds against a dead collector): a daemon thread, so neither the event loop nor
    # the interpreter's exit waits for it past the bound.
    finished = threading.Event()

    def shut_down() -> None:
        try:
            provider.shutdown()
        finally:
            finished.set()

    threading.Thread(target=shut_down, name="opscore-tracing-stop", daemon=True).start()
    if not await asyncio.to_thread(finished.wait, FLUSH_ON_STOP_SECONDS):
        logger.warning(
            "tracing: queued spans not exported within %.0fs; dropped", FLUSH_ON_STOP_SECONDS
        )
