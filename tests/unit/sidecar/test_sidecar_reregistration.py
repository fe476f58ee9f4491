"""The sidecar's side of "identity survives an AgentKit restart": a registration under a
known agentName with a new id moves that Agent to the new id, and reports still sent under
the old id land on it; names taken by another agent get their collision name."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sidecar_fakes import FakeKube, auth, client_for, report_body, signed_headers, state_url

from opscore_logic.names import AGENT_KEY_LABEL, agent_key, agent_names_for
from opscore_logic.registration import CREATED_BY_ANNOTATION, CREATED_BY_WEBHOOK
from opscore_sidecar.webhook import NOTIFY_PATH

pytestmark = pytest.mark.timeout(30)

OLD_ID = "11111111-1111-4111-8111-111111111111"
NEW_ID = "22222222-2222-4222-8222-222222222222"


def registration(agent_id: str, agent_name: str = "researcher") -> bytes:
    details: dict[str, Any] = {
        "agentId": agent_id,
        "agentName": agent_name,
        "version": "1.0.0",
        "capabilities": ["research"],
        "contactEndpoint": f"http://{agent_name}.invalid/",
        "metadata": {},
    }
    return json.dumps({"event_type": "REGISTER", "agent_details": details}).encode()


async def register(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        NOTIFY_PATH, content=body, headers=signed_headers(body, timestamp=int(time.time()))
    )
    assert response.status_code == 200, response.text


def registered_agent(agent_id: str = OLD_ID, name: str = "researcher") -> dict[str, Any]:
    """The Agent a registration created before AgentKit restarted, with some history."""
    return {
        "metadata": {
            "name": name,
            "labels": {AGENT_KEY_LABEL: agent_key(agent_id)},
            "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_WEBHOOK},
        },
        "spec": {"agentId": agent_id, "agentName": "researcher", "paused": False},
        "status": {"tasksSucceeded": 7},
    }


async def test_a_new_id_under_a_known_name_moves_the_agent_to_it() -> None:
    kube = FakeKube()
    kube.put(registered_agent())
    async with client_for(kube) as (client, _):
        await register(client, registration(NEW_ID))
    [agent] = kube.agents()
    assert agent["metadata"]["name"] == "researcher"
    assert (agent["spec"]["agentId"], agent["spec"]["previousAgentId"]) == (NEW_ID, OLD_ID)
    assert agent["metadata"]["labels"] == {AGENT_KEY_LABEL: agent_key(NEW_ID)}
    assert agent["status"]["tasksSucceeded"] == 7  # the status is the operator's: untouched


async def test_a_declared_agent_with_that_agent_name_is_moved_too() -> None:
    kube = FakeKube()
    declared = registered_agent(name="my-researcher")
    del declared["metadata"]["annotations"]
    kube.put(declared)
    async with client_for(kube) as (client, _):
        await register(client, registration(NEW_ID))
    [agent] = kube.agents()
    assert (agent["metadata"]["name"], agent["spec"]["agentId"]) == ("my-researcher", NEW_ID)


async def test_a_report_under_the_previous_id_lands_on_the_moved_agent() -> None:
    kube = FakeKube()
    kube.put(registered_agent())
    async with client_for(kube) as (client, _):
        await register(client, registration(NEW_ID))
        late = report_body(OLD_ID, state="active", timestamp="2026-11-25T08:40:00+00:00")
        response = await client.post(state_url(OLD_ID), json=late, headers=auth())
        assert response.status_code == 202
        fresh = report_body(NEW_ID, timestamp="2026-11-25T08:41:00+00:00")
        response = await client.post(state_url(NEW_ID), json=fresh, headers=auth())
        assert response.status_code == 202
    [agent] = kube.agents()
    # Under the old id, then under the new one: both on the one Agent.
    assert [r["state"] for r in kube.reports("researcher")] == ["active", "idle"]
    assert agent["spec"]["agentId"] == NEW_ID


async def test_the_same_registration_again_changes_no_id() -> None:
    kube = FakeKube()
    kube.put(registered_agent())
    async with client_for(kube) as (client, _):
        await register(client, registration(OLD_ID))
    [agent] = kube.agents()
    assert agent["spec"]["agentId"] == OLD_ID
    assert "previousAgentId" not in agent["spec"]


async def test_a_name_held_by_another_agent_gets_the_collision_name() -> None:
    kube = FakeKube()
    kube.put(registered_agent())  # "researcher" is taken by the agent called "researcher"
    async with client_for(kube) as (client, _):
        await register(client, registration(NEW_ID, agent_name="Researcher"))
    names = sorted(a["metadata"]["name"] for a in kube.agents())
    assert names == sorted(["researcher", agent_names_for("Researcher", NEW_ID)[1]])
    assert kube.agent("researcher")["spec"]["agentId"] == OLD_ID  # the other one: untouched


async def test_a_name_with_nothing_valid_is_named_after_the_id() -> None:
    kube = FakeKube()
    async with client_for(kube) as (client, _):
        await register(client, registration(NEW_ID, agent_name="***"))
    [agent] = kube.agents()
    assert agent["metadata"]["name"] == NEW_ID
