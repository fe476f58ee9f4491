"""The sidecar's own series: every answer counted by route template and code, and the
report-to-status latency measured when the write lands (heartbeats included)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sidecar_fakes import (
    AGENT_ID,
    NAMESPACE,
    FakeKube,
    auth,
    client_for,
    report_body,
    state_url,
)

from opscore_logic.agent_model import AgentReport
from opscore_sidecar.agent_directory import AgentDirectory
from opscore_sidecar.reports import ReportWriter

pytestmark = pytest.mark.timeout(30)

STATE_ROUTE = "/v1/opscore/agent/{agentId}/state"


def responses(method: str, route: str, code: str) -> float:
    labels = {"method": method, "route": route, "code": code}
    return REGISTRY.get_sample_value("opscore_sidecar_http_responses_total", labels) or 0.0


def write_latencies() -> tuple[float, float]:
    """(count, sum) of the report-to-status histogram."""
    name = "opscore_sidecar_report_write_seconds"
    return (
        REGISTRY.get_sample_value(f"{name}_count") or 0.0,
        REGISTRY.get_sample_value(f"{name}_sum") or 0.0,
    )


async def test_answers_are_counted_by_route_template_and_code() -> None:
    before = {
        "ok": responses("POST", STATE_ROUTE, "202"),
        "unauthorized": responses("POST", STATE_ROUTE, "401"),
        "too_large": responses("POST", "unrouted", "413"),
        "unknown": responses("GET", "unrouted", "404"),
        "odd": responses("other", "unrouted", "404"),
    }
    async with client_for(FakeKube(), max_body_bytes=1024) as (client, _):
        await client.post(state_url(), json=report_body(), headers=auth())
        await client.post(state_url("someone-else"), json=report_body("someone-else"))
        await client.post(state_url(), content=b" " * 2048, headers=auth())
        await client.get("/no/such/path")
        await client.request("BREW", "/no/such/path")
    assert responses("POST", STATE_ROUTE, "202") == before["ok"] + 1
    assert responses("POST", STATE_ROUTE, "401") == before["unauthorized"] + 1, "any agent id"
    assert responses("POST", "unrouted", "413") == before["too_large"] + 1
    assert responses("GET", "unrouted", "404") == before["unknown"] + 1
    assert responses("other", "unrouted", "404") == before["odd"] + 1


async def test_a_heartbeats_latency_is_observed_when_its_write_lands() -> None:
    kube = FakeKube()
    writer = ReportWriter(kube, AgentDirectory(kube, NAMESPACE), linger=0.2)
    count, total = write_latencies()
    heartbeat = AgentReport(
        state="active", timestamp=datetime.now(UTC), received_at=datetime.now(UTC)
    )
    assert await writer.submit(AGENT_ID, heartbeat) is True  # answered once queued
    assert write_latencies() == (count, total), "not stored yet, so not measured yet"
    await asyncio.wait_for(kube.status_patch_started.wait(), timeout=5)
    await writer.aclose()
    after_count, after_total = write_latencies()
    assert after_count == count + 1
    assert after_total - total >= 0.15, "the linger is part of its way into status"
