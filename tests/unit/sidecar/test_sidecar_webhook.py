"""AgentKit's signed registration webhook: `POST /v1/opscore/internal/agent/notify`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sidecar_fakes import (
    AGENT_ID,
    SECRET,
    FakeKube,
    auth,
    client_for,
    report_body,
    signed_headers,
    state_url,
)

from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_sidecar.webhook import sign, signature_problem

pytestmark = pytest.mark.timeout(30)

URL = "/v1/opscore/internal/agent/notify"


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
async def client(kube: FakeKube) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(kube) as (client, _):
        yield client


def event(metadata: Any = None, **details: Any) -> dict[str, Any]:
    agent_details = {
        "agentId": AGENT_ID,
        "agentName": "summariser",
        "version": "1.2.0",
        "capabilities": ["summarise"],
        "contactEndpoint": "http://summariser:9000/",
        "metadata": {} if metadata is None else metadata,
        "registration_time": "2026-11-25T08:34:05.120000Z",
    }
    agent_details.update(details)
    return {"event_type": "REGISTER", "agent_details": agent_details}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def send(
    client: httpx.AsyncClient, body: bytes, *, at: float | None = None, secret: str = SECRET
) -> httpx.Response:
    headers = signed_headers(body, timestamp=int(time.time() if at is None else at), secret=secret)
    return await client.post(URL, content=body, headers=headers)


async def test_signed_registration_creates_the_agent_with_its_spec(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    response = await send(client, encode(event({"description": "Summarises", "config": {}})))
    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert isinstance(response.json()["message"], str)
    agent = kube.agent("summariser")  # named after agentName
    assert agent["spec"] == {
        "agentId": AGENT_ID,
        "agentName": "summariser",
        "version": "1.2.0",
        "capabilities": ["summarise"],
        "contactEndpoint": "http://summariser:9000/",
        "description": "Summarises",
    }
    assert agent["metadata"]["labels"] == {AGENT_KEY_LABEL: agent_key(AGENT_ID)}


async def test_registration_after_first_report_creates_the_named_agent_and_keeps_reports(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await client.post(state_url(), json=report_body(), headers=auth())
    response = await send(client, encode(event()))
    assert response.status_code == 200
    assert kube.agent("summariser")["spec"]["agentId"] == AGENT_ID
    # The first-contact Agent keeps its report until the operator merges it into the named
    # one (tests/unit/agents/test_agent_merge.py).
    assert len(kube.reports(AGENT_ID)) == 1
    assert len(kube.agents()) == 2


async def test_registration_patches_only_the_spec(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.put({"metadata": {"name": AGENT_ID}, "spec": {"agentId": AGENT_ID, "paused": True}})
    await send(client, encode(event()))
    [patch] = [c for c in kube.calls if c.verb == "patch"]
    assert set(patch.body) == {"spec"}
    assert kube.agent(AGENT_ID)["spec"]["paused"] is True


async def test_empty_metadata_sets_no_description(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    assert (await send(client, encode(event({})))).status_code == 200
    assert "description" not in kube.agent("summariser")["spec"]


async def test_null_metadata_is_accepted(client: httpx.AsyncClient, kube: FakeKube) -> None:
    body = event()
    body["agent_details"]["metadata"] = None
    assert (await send(client, encode(body))).status_code == 200
    assert "description" not in kube.agent("summariser")["spec"]


async def test_metadata_description_becomes_spec_description(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await send(client, encode(event({"description": "Reads papers", "config": {"k": 1}})))
    assert kube.agent("summariser")["spec"]["description"] == "Reads papers"


async def test_overlong_description_is_cut_to_the_crd_limit(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    await send(client, encode(event({"description": "d" * 5000})))
    assert len(kube.agent("summariser")["spec"]["description"]) == 1024


async def test_registration_without_registration_time_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    body = event()
    del body["agent_details"]["registration_time"]
    assert (await send(client, encode(body))).status_code == 200


async def test_signature_covers_the_raw_bytes_as_sent(client: httpx.AsyncClient) -> None:
    raw = json.dumps(event(), indent=3).encode()  # not how we would re-serialise it
    assert (await send(client, raw)).status_code == 200


async def test_bad_signature_is_401_and_changes_nothing(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    response = await send(client, encode(event()), secret="not-the-secret")
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
    assert kube.calls == []


async def test_tampered_body_is_401_and_changes_nothing(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    body = encode(event())
    headers = signed_headers(body, timestamp=int(time.time()))
    tampered = body.replace(b"summariser", b"impostor!!")
    response = await client.post(URL, content=tampered, headers=headers)
    assert response.status_code == 401
    assert kube.calls == []


async def test_stale_timestamp_is_401_and_changes_nothing(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    response = await send(client, encode(event()), at=time.time() - 310)
    assert response.status_code == 401
    assert kube.calls == []


async def test_timestamp_too_far_in_the_future_is_401(client: httpx.AsyncClient) -> None:
    assert (await send(client, encode(event()), at=time.time() + 310)).status_code == 401


async def test_missing_signature_headers_are_401(client: httpx.AsyncClient, kube: FakeKube) -> None:
    response = await client.post(URL, content=encode(event()))
    assert response.status_code == 401
    assert kube.calls == []


async def test_unsigned_garbage_is_401_not_422(client: httpx.AsyncClient) -> None:
    assert (await client.post(URL, content=b"not json")).status_code == 401


async def test_unknown_event_type_is_422_naming_the_field(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    body = {**event(), "event_type": "DEREGISTER"}
    response = await send(client, encode(body))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "event_type"]
    assert kube.calls == []


async def test_missing_agent_id_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    body = event()
    del body["agent_details"]["agentId"]
    response = await send(client, encode(body))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "agent_details", "agentId"]


async def test_signed_invalid_json_is_422(client: httpx.AsyncClient) -> None:
    assert (await send(client, b"{not json")).status_code == 422


async def test_webhook_without_a_configured_secret_is_503(kube: FakeKube) -> None:
    async with client_for(kube, webhook_secret=None) as (client, _):
        response = await send(client, encode(event()))
    assert response.status_code == 503
    assert "OPSCORE_WEBHOOK_SECRET" in response.json()["detail"]
    assert kube.calls == []


async def test_unreachable_api_server_is_503_with_retry_after(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    kube.down = True
    response = await send(client, encode(event()))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"


async def test_webhooks_are_counted_in_metrics(client: httpx.AsyncClient) -> None:
    await send(client, encode(event()), secret="wrong")
    metrics = (await client.get("/metrics")).text
    assert 'opscore_sidecar_webhooks_total{result="unauthorized"}' in metrics


async def test_openapi_documents_the_webhook_body(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    body = document["paths"][URL]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/RegistrationEvent"}
    assert "AgentDetails" in document["components"]["schemas"]


def test_signature_problem_accepts_agentkits_signature() -> None:
    body = b'{"event_type":"REGISTER"}'
    now = 1_800_000_000
    signature = sign(SECRET.encode(), str(now), body)
    assert (
        signature_problem(
            secret=SECRET.encode(), timestamp=str(now), signature=signature, body=body, now=now
        )
        is None
    )


def test_signature_problem_rejects_non_numeric_timestamp() -> None:
    problem = signature_problem(
        secret=b"s", timestamp="1.5e9", signature="00", body=b"", now=1_500_000_000
    )
    assert problem is not None
    assert "epoch" in problem
