"""`opscore_client`: SDK-compatible reports that name their task, sync and async."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sidecar_fakes import API_KEY, FakeKube, client_for

from opscore_client import (
    AsyncOpsCoreClient,
    OpsCoreClient,
    OpsCoreError,
    report_payload,
    state_url,
    task_id_of,
)
from opscore_logic.outcomes import infer_outcome
from opscore_sidecar.reports import stored_reports
from opscore_sidecar.schemas import StateReport

AGENT = "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a"


def test_the_payload_has_exactly_the_sdks_keys_and_timestamp_format() -> None:
    body = report_payload(AGENT, "idle")
    assert list(body) == ["agentId", "timestamp", "state", "details"]
    assert body["details"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", body["timestamp"])
    StateReport.model_validate(body)  # what the sidecar accepts


def test_the_timestamp_is_now_in_utc_unless_given() -> None:
    before = datetime.now(UTC)
    sent = datetime.fromisoformat(report_payload(AGENT, "idle")["timestamp"])
    after = datetime.now(UTC)
    assert before <= sent <= after


def test_a_given_timestamp_is_sent_in_utc_with_microseconds_even_when_they_are_zero() -> None:
    given = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    body = report_payload(AGENT, "idle", timestamp=given)
    assert body["timestamp"] == "2026-11-25T09:00:00.000000+00:00"


def test_correlation_and_results_ride_in_details() -> None:
    done = report_payload(AGENT, "idle", task_id="uid:step:0:1", output={"n": 3}, details={"x": 1})
    assert done["details"] == {"x": 1, "opscore_task_id": "uid:step:0:1", "output": {"n": 3}}
    failed = report_payload(AGENT, "error", task_id="t", error="disk full")
    assert failed["details"] == {
        "opscore_task_id": "t",
        "error_code": "AGENT_ERROR",
        "message": "disk full",
    }
    custom = report_payload(AGENT, "error", error={"error_code": "E42", "message": "m"})
    assert custom["details"] == {"error_code": "E42", "message": "m"}


def test_the_task_id_comes_from_agentkits_message() -> None:
    assert task_id_of({"messageType": "workflow_task", "opscore_task_id": "t-1"}) == "t-1"
    assert task_id_of({"messageType": "ping"}) is None
    assert task_id_of({"opscore_task_id": 5}) is None


def test_the_url_drops_any_path_prefix_like_the_sdk() -> None:
    assert state_url("http://opscore:8080/api/", "a b") == (
        "http://opscore:8080/v1/opscore/agent/a%20b/state"
    )


def recording(*statuses: int, headers: dict[str, str] | None = None) -> tuple[Any, list[Any]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses[min(len(seen), len(statuses)) - 1]
        return httpx.Response(status, json={"detail": f"answer {status}"}, headers=headers)

    return handler, seen


def test_sync_client_sends_the_bearer_key_and_retries_a_503() -> None:
    handler, seen = recording(503, 202, headers={"Retry-After": "0"})
    with OpsCoreClient("http://oc", "k", transport=httpx.MockTransport(handler)) as client:
        client.report(AGENT, "idle", task_id="t")
    assert len(seen) == 2
    assert seen[0].headers["authorization"] == "Bearer k"
    assert json.loads(seen[0].content) == json.loads(seen[1].content)  # one report, resent


def test_sync_client_does_not_retry_a_refusal() -> None:
    handler, seen = recording(401)
    with (
        OpsCoreClient("http://oc", "k", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(OpsCoreError) as raised,
    ):
        client.report(AGENT, "idle")
    assert (raised.value.status, raised.value.detail) == (401, "answer 401")
    assert len(seen) == 1


async def test_async_client_gives_up_after_its_retries() -> None:
    handler, seen = recording(503, headers={"Retry-After": "0"})
    transport = httpx.MockTransport(handler)
    async with AsyncOpsCoreClient("http://oc", "k", retries=2, transport=transport) as client:
        with pytest.raises(OpsCoreError) as raised:
            await client.report(AGENT, "active")
    assert raised.value.status == 503
    assert len(seen) == 3


async def test_a_correlated_report_settles_exactly_its_task_through_the_sidecar() -> None:
    kube = FakeKube()
    async with client_for(kube) as (_, app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncOpsCoreClient("http://sidecar", API_KEY, transport=transport) as client:
            await client.report(AGENT, "active", task_id="uid:s:0:1")
            await client.report(AGENT, "idle", task_id="uid:s:0:1", output={"answer": 42})
    reports = stored_reports(kube.agent(AGENT))
    assert [r.details.get("opscore_task_id") for r in reports] == ["uid:s:0:1"] * 2
    outcome = infer_outcome(reports, task_id="uid:s:0:1", dispatched_at=reports[0].received_at)
    assert outcome is not None
    assert (outcome.succeeded, outcome.output) == (True, {"answer": 42})
