"""Tracing is off, and costs nothing, without an OTLP endpoint; with one, an unreachable
collector never blocks the code that ends spans, and a stop is bounded."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from opscore_logic.trace_config import trace_export
from opscore_operator.tracing import start_tracing, stop_tracing, tracer_of


def test_without_an_endpoint_nothing_is_exported() -> None:
    assert not trace_export({}).enabled
    assert start_tracing("opscore-operator", env={}) is None
    assert tracer_of(None) is None


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "  "},
    ],
)
def test_settings_that_turn_tracing_off_say_why(env: dict[str, str]) -> None:
    decision = trace_export(env)
    assert not decision.enabled
    assert decision.why


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_an_otlp_http_endpoint_turns_tracing_on(env: dict[str, str]) -> None:
    assert trace_export(env).enabled


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_collector_neither_blocks_spans_nor_a_stop() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "OTEL_BSP_SCHEDULE_DELAY": "10",
    }
    provider = start_tracing("opscore-operator", env=env)
    tracer = tracer_of(provider)
    assert tracer is not None
    started = time.perf_counter()
    for n in range(5000):  # more than the queue holds: the rest are dropped, not waited on
        tracer.start_span(f"span {n}").end()
    assert time.perf_counter() - started < 2.0
    stopping = time.perf_counter()
    await asyncio.wait_for(stop_tracing(provider), timeout=10)
    assert time.perf_counter() - stopping < 5.0
