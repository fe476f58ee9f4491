"""The sidecar's side of "one Agent per agent id": it finds a user-declared Agent before
the operator has labelled it, and marks the Agents it creates as its own."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sidecar_fakes import (
    AGENT_ID,
    NAMESPACE,
    FakeKube,
    auth,
    client_for,
    report_body,
    signed_headers,
    state_url,
)

from opscore_kube import AGENTS
from opscore_logic.names import AGENT_KEY_LABEL, agent_key, agent_resource_name
from opscore_logic.registration import (
    CREATED_BY_ANNOTATION,
    CREATED_BY_REPORT,
    CREATED_BY_WEBHOOK,
    created_by,
)
from opscore_sidecar.webhook import NOTIFY_PATH

pytestmark = pytest.mark.timeout(30)


def registration(agent_id: str = AGENT_ID, capabilities: list[str] | None = None) -> bytes:
    details: dict[str, Any] = {
        "agentId": agent_id,
        "agentName": "summariser",
        "version": "1.0.0",
        "capabilities": capabilities or ["summarise"],
        "contactEndpoint": "http://summariser:9000/",
        "metadata": {},
    }
    return json.dumps({"event_type": "REGISTER", "agent_details": details}).encode()


async def test_a_report_finds_a_declared_agent_the_operator_has_not_labelled_yet() -> None:
    kube = FakeKube()
    kube.put({"metadata": {"name": "my-agent"}, "spec": {"agentId": AGENT_ID}})
    async with client_for(kube) as (client, _):
        response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert [a["metadata"]["name"] for a in kube.agents()] == ["my-agent"]
    assert [r["state"] for r in kube.reports("my-agent")] == ["idle"]


async def test_a_webhook_finds_a_declared_agent_the_operator_has_not_labelled_yet() -> None:
    kube = FakeKube()
    kube.put({"metadata": {"name": "my-agent"}, "spec": {"agentId": AGENT_ID, "paused": True}})
    body = registration()
    async with client_for(kube) as (client, _):
        response = await client.post(
            NOTIFY_PATH, content=body, headers=signed_headers(body, timestamp=int(time.time()))
        )
    assert response.status_code == 200
    [agent] = kube.agents()
    assert agent["metadata"]["name"] == "my-agent"
    assert agent["spec"]["capabilities"] == ["summarise"]
    assert agent["spec"]["paused"] is True


@pytest.mark.parametrize(
    ("agent_id", "how"),
    [(AGENT_ID, CREATED_BY_REPORT), ("Research_Agent.V2", CREATED_BY_WEBHOOK)],
)
async def test_created_agents_say_how_they_were_first_seen(agent_id: str, how: str) -> None:
    kube = FakeKube()
    async with client_for(kube) as (client, _):
        if how == CREATED_BY_REPORT:
            response = await client.post(
                state_url(agent_id), json=report_body(agent_id), headers=auth()
            )
        else:
            body = registration(agent_id)
            response = await client.post(
                NOTIFY_PATH, content=body, headers=signed_headers(body, timestamp=int(time.time()))
            )
    assert response.is_success
    [agent] = kube.agents()
    # A report knows only the id; a registration names the Agent after agentName.
    expected = agent_resource_name(agent_id) if how == CREATED_BY_REPORT else "summariser"
    assert agent["metadata"]["name"] == expected
    assert agent["metadata"]["annotations"] == {CREATED_BY_ANNOTATION: how}
    assert created_by(agent) == how
    assert agent["spec"]["agentId"] == agent_id


async def test_reports_go_to_the_declared_agent_when_both_are_found_by_label() -> None:
    kube = FakeKube()
    # An Ops-Core-created Agent under a generated name (its deterministic name was taken)
    # and the user's Agent, both labelled: the sidecar writes where the operator keeps.
    kube.put({"metadata": {"name": agent_resource_name(AGENT_ID)}, "spec": {"agentId": "other"}})
    label = {AGENT_KEY_LABEL: agent_key(AGENT_ID)}
    kube.put(
        {
            "metadata": {
                "name": "auto-x1",
                "labels": label,
                "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_REPORT},
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "spec": {"agentId": AGENT_ID},
        }
    )
    kube.put(
        {
            "metadata": {
                "name": "mine",
                "labels": label,
                "creationTimestamp": "2026-01-02T00:00:00Z",
            },
            "spec": {"agentId": AGENT_ID},
        }
    )
    async with client_for(kube) as (client, _):
        response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert [r["state"] for r in kube.reports("mine")] == ["idle"]
    assert kube.reports("auto-x1") == []


async def test_after_a_registration_moves_the_id_reports_go_to_the_new_agent_at_once() -> None:
    """A report first (an Agent named after the id), then the registration (an Agent named
    after agentName, into which the operator merges the first and deletes it): the next
    report is written to the new Agent, not tried on the deleted one first (a 404 PATCH,
    one wasted API write per agent)."""
    kube = FakeKube()
    async with client_for(kube) as (client, _):
        response = await client.post(state_url(), json=report_body(), headers=auth())
        assert response.status_code == 202
        first = agent_resource_name(AGENT_ID)
        body = registration()
        response = await client.post(
            NOTIFY_PATH, content=body, headers=signed_headers(body, timestamp=int(time.time()))
        )
        assert response.status_code == 200, response.text
        del kube.objects[(AGENTS.plural, NAMESPACE, first)]  # the operator's merge, in short
        before = len(kube.calls)
        later = report_body(timestamp="2026-11-25T09:00:00+00:00")
        response = await client.post(state_url(), json=later, headers=auth())
        assert response.status_code == 202
    patched = [c.name for c in kube.calls[before:] if c.verb.startswith("patch")]
    assert patched == ["summariser"]
