"""`POST/GET /v1/opscore/agent/{agentId}/state`: the agents' heartbeat into Agent status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sidecar_fakes import (
    AGENT_ID,
    API_KEY,
    NAMESPACE,
    FakeKube,
    auth,
    client_for,
    declared_agent,
    report_body,
    state_url,
)

from opscore_kube import KubeApiError, NotFound
from opscore_logic.names import AGENT_KEY_LABEL, agent_key, agent_resource_name

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
async def client(kube: FakeKube) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(kube) as (client, _):
        yield client


def now_iso(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat()


# -- success ---------------------------------------------------------------------------------


async def test_report_is_answered_202_with_success_body(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "State update accepted"}


async def test_accepted_report_is_stored_in_status_reports(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    body = report_body(state="error", details={"error_code": "E", "message": "boom"})
    await client.post(state_url(), json=body, headers=auth())
    [stored] = kube.reports(AGENT_ID)
    assert stored["state"] == "error"
    assert stored["details"] == {"error_code": "E", "message": "boom"}
    assert stored["timestamp"] == "2026-11-25T08:34:07.847342Z"
    assert "receivedAt" in stored


async def test_first_report_creates_the_agent(client: httpx.AsyncClient, kube: FakeKube) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    agent = kube.agent(AGENT_ID)
    assert agent["spec"] == {"agentId": AGENT_ID}
    assert agent["metadata"]["labels"] == {AGENT_KEY_LABEL: agent_key(AGENT_ID)}


async def test_report_for_non_dns_id_creates_agent_under_hashed_name(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    agent_id = "Research_Agent.v2"
    await client.post(state_url(agent_id), json=report_body(agent_id), headers=auth())
    name = agent_resource_name(agent_id)
    assert name.startswith("research-agent-v2-")
    assert kube.agent(name)["spec"]["agentId"] == agent_id


async def test_report_lands_in_user_declared_agent_found_by_label(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put(declared_agent("summariser", AGENT_ID))
    await client.post(state_url(), json=report_body(), headers=auth())
    assert len(kube.agents()) == 1
    assert len(kube.reports("summariser")) == 1


async def test_report_lands_in_existing_agent_without_agent_id_named_after_it(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put({"metadata": {"name": AGENT_ID}, "spec": {}})
    await client.post(state_url(), json=report_body(), headers=auth())
    assert len(kube.reports(AGENT_ID)) == 1


async def test_agent_name_held_by_another_id_gets_a_generated_name(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put({"metadata": {"name": AGENT_ID}, "spec": {"agentId": "someone-else"}})
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert kube.agent(AGENT_ID).get("status") is None
    [mine] = [a for a in kube.agents() if a["spec"]["agentId"] == AGENT_ID]
    assert mine["metadata"]["name"].startswith(AGENT_ID[:20])
    assert len(mine["status"]["reports"]) == 1


async def test_existing_reports_are_kept_when_a_new_one_arrives(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    old = {
        "state": "initializing",
        "timestamp": "2026-11-25T08:00:00Z",
        "receivedAt": "2026-11-25T08:00:00Z",
        "details": {},
    }
    kube.put(declared_agent(AGENT_ID, AGENT_ID, reports=[old], state="Initializing"))
    await client.post(state_url(), json=report_body(), headers=auth())
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["initializing", "idle"]


async def test_report_never_writes_operator_owned_status_fields(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put(declared_agent(AGENT_ID, AGENT_ID, state="Idle", tasksSucceeded=3))
    await client.post(state_url(), json=report_body(), headers=auth())
    await client.post(state_url(), json=report_body(state="active"), headers=auth())
    patches = [c.body for c in kube.calls if c.verb == "patch_status"]
    assert len(patches) == 2  # the first write (a merge patch), then a JSON patch
    touched: set[str] = set()
    for patch in patches:
        if isinstance(patch, dict):
            assert set(patch) <= {"metadata", "status"}
            touched |= set(patch["status"])
        else:
            touched |= {op["path"].split("/")[2] for op in patch}
    assert touched == {"reports", "reportSequence"}
    assert kube.agent(AGENT_ID)["status"]["tasksSucceeded"] == 3


async def test_duplicate_report_is_accepted_and_stored_once(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    first = await client.post(state_url(), json=report_body(), headers=auth())
    patches = kube.count("patch_status")
    second = await client.post(state_url(), json=report_body(), headers=auth())
    assert (first.status_code, second.status_code) == (202, 202)
    assert len(kube.reports(AGENT_ID)) == 1
    assert kube.count("patch_status") == patches


async def test_steady_state_report_costs_one_patch_and_no_read(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await client.post(state_url(), json=report_body(state="active"), headers=auth())
    before = list(kube.calls)
    await client.post(state_url(), json=report_body(timestamp=now_iso()), headers=auth())
    assert [c.verb for c in kube.calls[len(before) :]] == ["patch_status"]


async def test_concurrent_reports_are_batched_and_none_lost(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    agent = declared_agent(AGENT_ID, AGENT_ID)
    agent["spec"] = {"agentId": AGENT_ID, "maxConcurrentTasks": 8}  # a log of 16: room for all
    kube.put(agent)
    kube.patch_gate = asyncio.Event()
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    bodies = [
        report_body(
            state="active" if i % 2 else "idle",
            timestamp=(start + timedelta(seconds=i)).isoformat(),
        )
        for i in range(12)
    ]
    first = asyncio.create_task(client.post(state_url(), json=bodies[0], headers=auth()))
    await kube.status_patch_started.wait()
    rest = [
        asyncio.create_task(client.post(state_url(), json=body, headers=auth()))
        for body in bodies[1:]
    ]
    await asyncio.sleep(0.1)  # let them all queue behind the write in flight
    kube.patch_gate.set()
    responses = await asyncio.gather(first, *rest)
    assert [r.status_code for r in responses] == [202] * 12
    assert kube.count("patch_status") == 2
    assert len(kube.reports(AGENT_ID)) == 12


async def test_reports_are_answered_only_after_the_write(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.patch_gate = asyncio.Event()
    request = asyncio.create_task(client.post(state_url(), json=report_body(), headers=auth()))
    await kube.status_patch_started.wait()
    await asyncio.sleep(0.05)
    assert not request.done()
    kube.patch_gate.set()
    assert (await request).status_code == 202


async def test_report_recreates_an_agent_deleted_under_the_sidecar(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await client.post(state_url(), json=report_body(state="active"), headers=auth())
    kube.objects.clear()
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["idle"]


async def test_concurrent_creation_conflict_resolves_to_the_existing_agent(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    original_create = kube.create

    async def racing_create(*args: object, **kwargs: object) -> dict[str, object]:
        kube.put(declared_agent(AGENT_ID, AGENT_ID))  # someone else won the race
        return await original_create(*args, **kwargs)  # type: ignore[arg-type]

    kube.create = racing_create  # type: ignore[method-assign]
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert len(kube.agents()) == 1
    assert len(kube.reports(AGENT_ID)) == 1


# -- timestamps ------------------------------------------------------------------------------


async def test_trailing_z_timestamp_is_accepted(client: httpx.AsyncClient, kube: FakeKube) -> None:
    body = report_body(timestamp="2026-11-25T08:34:07.847342Z")
    assert (await client.post(state_url(), json=body, headers=auth())).status_code == 202
    assert kube.reports(AGENT_ID)[0]["timestamp"] == "2026-11-25T08:34:07.847342Z"


async def test_naive_timestamp_is_taken_as_utc(client: httpx.AsyncClient, kube: FakeKube) -> None:
    body = report_body(timestamp="2026-11-25T08:34:07.847342")
    assert (await client.post(state_url(), json=body, headers=auth())).status_code == 202
    assert kube.reports(AGENT_ID)[0]["timestamp"] == "2026-11-25T08:34:07.847342Z"


async def test_offset_timestamp_is_stored_in_utc(client: httpx.AsyncClient, kube: FakeKube) -> None:
    body = report_body(timestamp="2026-11-25T10:34:07.847342+02:00")
    await client.post(state_url(), json=body, headers=auth())
    assert kube.reports(AGENT_ID)[0]["timestamp"] == "2026-11-25T08:34:07.847342Z"


async def test_timestamp_beyond_clock_skew_is_422_naming_timestamp(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    body = report_body(timestamp=now_iso(timedelta(minutes=10)))
    response = await client.post(state_url(), json=body, headers=auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "timestamp"]
    assert kube.agents() == []


async def test_timestamp_within_clock_skew_is_accepted(client: httpx.AsyncClient) -> None:
    body = report_body(timestamp=now_iso(timedelta(minutes=4)))
    assert (await client.post(state_url(), json=body, headers=auth())).status_code == 202


# -- errors ----------------------------------------------------------------------------------


async def test_agent_id_mismatch_is_400_naming_both_ids(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url("path-id"), json=report_body("body-id"), headers=auth())
    assert response.status_code == 400
    assert response.json() == {
        "detail": "agentId in body ('body-id') does not match path ('path-id')"
    }


async def test_missing_key_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert isinstance(response.json()["detail"], str)


async def test_unknown_key_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(), headers=auth("nope"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "Invalid API key"}


async def test_non_bearer_authorization_is_401(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Basic {API_KEY}"}
    response = await client.post(state_url(), json=report_body(), headers=headers)
    assert response.status_code == 401


async def test_missing_state_is_422_naming_the_field(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    body = report_body()
    del body["state"]
    response = await client.post(state_url(), json=body, headers=auth())
    assert response.status_code == 422
    assert ["body", "state"] in [error["loc"] for error in response.json()["detail"]]
    assert kube.calls == []


async def test_overlong_state_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(state_url(), json=report_body(state="x" * 65), headers=auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "state"]


async def test_unparseable_timestamp_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        state_url(), json=report_body(timestamp="yesterday"), headers=auth()
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "timestamp"]


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_details_nested_too_deep_are_422_naming_the_field(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    # Found by the fault suite (F7): 400 levels parsed, then failed to serialise: a 500.
    for depth in (101, 400):
        response = await client.post(
            state_url(), json=report_body(details=nested(depth)), headers=auth()
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "details"]
        assert "nested deeper than 100 levels" in response.text
    assert kube.calls == []


async def test_details_as_deep_as_allowed_are_stored(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    response = await client.post(state_url(), json=report_body(details=nested(100)), headers=auth())
    assert response.status_code == 202
    assert kube.reports(AGENT_ID)[0]["details"] == nested(100)


async def test_unknown_state_is_accepted_verbatim(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    response = await client.post(state_url(), json=report_body(state="BUSY"), headers=auth())
    assert response.status_code == 202
    assert kube.reports(AGENT_ID)[0]["state"] == "BUSY"


async def test_oversized_content_length_is_413_before_reading(kube: FakeKube) -> None:
    async with client_for(kube, max_body_bytes=2048) as (client, _):
        body = json.dumps(report_body(details={"blob": "x" * 4096})).encode()
        response = await client.post(
            state_url(),
            content=body,
            headers={**auth(), "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert "detail" in response.json()
    assert kube.calls == []


async def test_oversized_streamed_body_is_413(kube: FakeKube) -> None:
    chunks_sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(100):
            chunks_sent += 1
            yield b" " * 1024

    async with client_for(kube, max_body_bytes=2048) as (client, _):
        response = await client.post(
            state_url(), content=chunks(), headers={**auth(), "Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["detail"] == "Request body exceeds 2048 bytes"
    assert chunks_sent < 100


async def test_unreachable_api_server_is_503_with_retry_after(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.down = True
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert isinstance(response.json()["detail"], str)


async def test_report_after_an_outage_is_stored_with_a_fresh_read(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await client.post(state_url(), json=report_body(state="active"), headers=auth())
    kube.down = True
    failed = await client.post(state_url(), json=report_body(timestamp=now_iso()), headers=auth())
    kube.down = False
    calls = len(kube.calls)
    retried = await client.post(state_url(), json=report_body(timestamp=now_iso()), headers=auth())
    assert (failed.status_code, retried.status_code) == (503, 202)
    assert kube.calls[calls].verb == "get"
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["active", "idle"]


async def test_api_server_refusal_is_502(client: httpx.AsyncClient, kube: FakeKube) -> None:
    kube.fail_next["create"] = [KubeApiError(403, "Forbidden", "RBAC says no")]
    response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 502
    assert "RBAC" not in response.json()["detail"]


async def test_not_found_twice_while_writing_is_reported_not_swallowed(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await client.post(state_url(), json=report_body(state="active"), headers=auth())
    kube.fail_next["patch_status"] = [
        NotFound(404, "NotFound", "x"),
        NotFound(404, "NotFound", "x"),
    ]
    response = await client.post(state_url(), json=report_body(timestamp=now_iso()), headers=auth())
    assert response.status_code == 502


# -- GET -------------------------------------------------------------------------------------


async def test_get_state_returns_the_newest_report(client: httpx.AsyncClient) -> None:
    await client.post(
        state_url(), json=report_body(state="idle", timestamp=now_iso()), headers=auth()
    )
    await client.post(
        state_url(),
        json=report_body(state="active", timestamp=now_iso(-timedelta(seconds=5))),
        headers=auth(),
    )
    response = await client.get(state_url(), headers=auth())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"agentId", "state", "details", "timestamp"}
    assert (body["agentId"], body["state"]) == (AGENT_ID, "idle")


async def test_get_state_reads_the_agent_when_not_in_memory(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    report = {
        "state": "error",
        "timestamp": "2026-11-25T08:00:00Z",
        "receivedAt": "2026-11-25T08:00:01Z",
        "details": {"error_code": "E"},
    }
    kube.put(declared_agent("declared", AGENT_ID, reports=[report]))
    response = await client.get(state_url(), headers=auth())
    assert response.json()["state"] == "error"
    assert response.json()["details"] == {"error_code": "E"}


async def test_get_state_of_unknown_agent_is_404_and_creates_nothing(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    response = await client.get(state_url(), headers=auth())
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)
    assert kube.agents() == []


async def test_get_state_of_agent_without_reports_is_404(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put(declared_agent(AGENT_ID, AGENT_ID))
    response = await client.get(state_url(), headers=auth())
    assert response.status_code == 404


async def test_get_state_needs_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get(state_url())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


# -- plumbing --------------------------------------------------------------------------------


async def test_response_echoes_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        state_url(), json=report_body(), headers={**auth(), "X-Request-ID": "req-42"}
    )
    assert response.headers["X-Request-ID"] == "req-42"


async def test_stored_reports_are_counted_in_metrics(client: httpx.AsyncClient) -> None:
    await client.post(state_url(), json=report_body(state="BUSY"), headers=auth())
    metrics = (await client.get("/metrics")).text
    assert 'opscore_sidecar_reports_total{result="stored",state="Active"}' in metrics
    assert "opscore_sidecar_report_write_seconds_count" in metrics


async def test_openapi_documents_the_state_endpoint_with_examples(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "post" in document["paths"]["/v1/opscore/agent/{agentId}/state"]
    assert document["components"]["schemas"]["StateReport"]["examples"]


async def test_reports_for_other_namespaces_are_not_read(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put(declared_agent(AGENT_ID, AGENT_ID), namespace="elsewhere")
    await client.post(state_url(), json=report_body(), headers=auth())
    assert kube.agent(AGENT_ID, NAMESPACE)["spec"]["agentId"] == AGENT_ID
    assert kube.agent(AGENT_ID, "elsewhere")["status"] == {}
