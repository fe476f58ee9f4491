"""The simulator keeps AgentKit's own API contract: registration, runs and their answers
(agentkit-contract.md).

Most tests run the simulator for real next to a stand-in Ops-Core that records every state
report, webhook and forwarded message, and wait on conditions with deadlines instead of sleeping.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sim_harness import (
    MESSAGE_KEYS,
    OpsCoreRecorder,
    Sim,
    registration,
    wait_for,
)

from opscore_testbed.agentkit_sim import (
    SimSettings,
    create_app,
)

pytestmark = pytest.mark.timeout(60)


async def test_register_answers_201_with_envelope_and_uuid4(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/agents/register", json=registration())

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "success"
    assert isinstance(body["message"], str)
    assert body["error_code"] is None
    assert set(body["data"]) == {"agentId"}
    assert uuid.UUID(body["data"]["agentId"]).version == 4


async def test_register_duplicate_name_is_409(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/agents/register", json=registration())).status_code == 201

    response = await api.post("/v1/agents/register", json=registration())

    assert response.status_code == 409
    assert "summarizer" in response.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [{"version": None}, {"contactEndpoint": "not a url"}, {"capabilities": "summarize"}],
    ids=["missing-version", "bad-url", "capabilities-not-list"],
)
async def test_register_bad_body_is_422(api: httpx.AsyncClient, change: dict[str, Any]) -> None:
    body = {k: v for k, v in (registration() | change).items() if v is not None}

    assert (await api.post("/v1/agents/register", json=body)).status_code == 422


async def test_run_answers_202_scheduled_envelope(api: httpx.AsyncClient) -> None:
    agent_id = (await api.post("/v1/agents/register", json=registration())).json()["data"][
        "agentId"
    ]

    response = await api.post(
        f"/v1/agents/{agent_id}/run",
        json={"senderId": "opscore", "messageType": "workflow_task", "payload": {"x": 1}},
    )

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "success"
    assert body["message"].startswith("Message accepted for agent")
    assert body["data"] == {"agentId": agent_id, "dispatch_status": "scheduled"}
    assert body["error_code"] is None


async def test_run_for_unknown_agent_is_404_with_agentkit_detail(api: httpx.AsyncClient) -> None:
    message = {"senderId": "opscore", "messageType": "workflow_task", "payload": {}}

    response = await api.post("/v1/agents/nope-123/run", json=message)

    assert response.status_code == 404
    assert response.json() == {"detail": "Agent with ID 'nope-123' not found."}


@pytest.mark.parametrize(
    "message",
    [
        {"messageType": "workflow_task", "payload": {}},
        {"senderId": "opscore", "payload": {}},
        {"senderId": "opscore", "messageType": "workflow_task", "payload": [1, 2]},
    ],
    ids=["no-senderId", "no-messageType", "payload-not-object"],
)
async def test_run_bad_body_is_422(api: httpx.AsyncClient, message: dict[str, Any]) -> None:
    agent_id = (await api.post("/v1/agents/register", json=registration())).json()["data"][
        "agentId"
    ]

    assert (await api.post(f"/v1/agents/{agent_id}/run", json=message)).status_code == 422


async def test_listing_agents_is_404_like_the_real_service(api: httpx.AsyncClient) -> None:
    await api.post("/v1/agents/register", json=registration())

    assert (await api.get("/v1/agents")).status_code == 404


async def test_list_endpoint_flag_answers_envelope_with_agents() -> None:
    app = create_app(SimSettings(list_endpoint=True))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentkit") as client:
        agent_id = (await client.post("/v1/agents/register", json=registration())).json()["data"][
            "agentId"
        ]
        response = await client.get("/v1/agents")
    await app.state.simulator.aclose()

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert [agent["agentId"] for agent in body["data"]] == [agent_id]


async def test_run_forwards_only_the_fields_agentkit_keeps(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    registered = await sim.client.post(
        "/v1/agents/register", json=registration("external", f"{opscore.url}/agent")
    )
    agent_id = registered.json()["data"]["agentId"]

    await sim.run(
        agent_id,
        payload={"task_name": "summarize", "text": "hi"},
        sessionContext={"sessionId": "s-1", "priorMessages": [], "dropped": True},
        task_name="summarize",
        opscore_session_id="wf-1",
        opscore_task_id="wf-1.a.1",
        unknownTopLevel="dropped",
    )
    [message] = await wait_for(lambda: opscore.of("message"), what="the forwarded message")

    body = message.body
    assert set(body) == MESSAGE_KEYS
    assert body["sessionContext"] == {"sessionId": "s-1", "priorMessages": []}
    assert body["payload"] == {"task_name": "summarize", "text": "hi"}
    assert (body["task_name"], body["opscore_session_id"], body["opscore_task_id"]) == (
        "summarize",
        "wf-1",
        "wf-1.a.1",
    )
