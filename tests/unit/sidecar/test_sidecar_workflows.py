"""`POST /v1/opscore/agent/{agentId}/workflow`: the earlier Ops-Core's trigger, answered
by creating a Workflow resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sidecar_fakes import AGENT_ID, NAMESPACE, FakeKube, auth, client_for

from opscore_kube import WORKFLOW_TEMPLATES, WORKFLOWS
from opscore_logic.legacy import LEGACY_ID_ANNOTATION, template_manifest, validate_legacy
from opscore_sidecar.workflow_start import REQUESTED_FOR_ANNOTATION

pytestmark = pytest.mark.timeout(30)

LEGACY: dict[str, Any] = {
    "id": "Research_Flow",
    "name": "Research",
    "version": "1.0",
    "tasks": [
        {
            "taskId": "gather",
            "name": "gather_sources",
            "agentCapability": "research",
            "parameters": {"depth": 2},
            "nextTaskId": "write",
        },
        {
            "taskId": "write",
            "name": "write_report",
            "agentCapability": "writing",
            "parameters": {},
            "nextTaskId": None,
        },
    ],
}


def url(agent_id: str = AGENT_ID) -> str:
    return f"/v1/opscore/agent/{agent_id}/workflow"


@pytest.fixture
def kube() -> FakeKube:
    fake = FakeKube()
    fake.put({"metadata": {"name": AGENT_ID}, "spec": {"agentId": AGENT_ID}})
    return fake


@pytest.fixture
async def client(kube: FakeKube) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(kube) as (client, _):
        yield client


def workflows(kube: FakeKube) -> list[dict[str, Any]]:
    return [o for (plural, _, _), o in kube.objects.items() if plural == WORKFLOWS.plural]


async def test_an_inline_definition_becomes_a_workflow_with_its_steps(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    body = {"workflowDefinition": LEGACY, "initialPayload": {"topic": "agents"}}
    response = await client.post(url(), json=body, headers=auth())
    assert response.status_code == 202
    [wf] = workflows(kube)
    answer = response.json()
    assert answer == {
        "sessionId": wf["metadata"]["uid"],
        "workflowId": wf["metadata"]["name"],
        "message": f"Workflow {wf['metadata']['name']} started",
    }
    assert wf["metadata"]["name"].startswith("research-flow-")
    assert wf["metadata"]["annotations"][REQUESTED_FOR_ANNOTATION] == AGENT_ID
    assert wf["metadata"]["annotations"][LEGACY_ID_ANNOTATION] == "Research_Flow"
    assert wf["spec"]["inputs"] == {"topic": "agents"}
    steps = wf["spec"]["steps"]
    assert [(s["name"], s["task"], s["capabilities"]) for s in steps] == [
        ("gather", "gather_sources", ["research"]),
        ("write", "write_report", ["writing"]),
    ]
    assert steps[1]["dependsOn"] == ["gather"]


async def test_a_definition_id_names_a_template_by_name_or_legacy_id(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    template = template_manifest(validate_legacy(LEGACY), namespace=NAMESPACE)
    kube.put(template, plural=WORKFLOW_TEMPLATES.plural)
    for definition_id in ("Research_Flow", "research-flow"):
        response = await client.post(
            url(), json={"workflowDefinitionId": definition_id}, headers=auth()
        )
        assert response.status_code == 202, response.text
    specs = [wf["spec"] for wf in workflows(kube)]
    assert specs == [{"templateRef": {"name": "research-flow"}}] * 2


async def test_a_legacy_id_must_match_the_templates_annotation(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    template = template_manifest(validate_legacy(LEGACY), namespace=NAMESPACE)
    template["metadata"]["annotations"][LEGACY_ID_ANNOTATION] = "research flow"
    kube.put(template, plural=WORKFLOW_TEMPLATES.plural)
    response = await client.post(
        url(), json={"workflowDefinitionId": "RESEARCH_FLOW"}, headers=auth()
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"initialPayload": {"a": 1}},
        {"workflowDefinitionId": "x", "workflowDefinition": LEGACY},
    ],
)
async def test_exactly_one_definition_is_required(
    client: httpx.AsyncClient, kube: FakeKube, body: dict[str, Any]
) -> None:
    response = await client.post(url(), json=body, headers=auth())
    assert response.status_code == 422
    assert "exactly one" in response.text
    assert workflows(kube) == []


async def test_an_invalid_inline_definition_is_422_naming_the_field(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    broken = {**LEGACY, "tasks": [{**LEGACY["tasks"][0], "nextTaskId": "nowhere"}]}
    response = await client.post(url(), json={"workflowDefinition": broken}, headers=auth())
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "workflowDefinition", "tasks[0].nextTaskId"]
    assert "nowhere" in error["msg"]
    assert workflows(kube) == []


async def test_unknown_definitions_and_agents_are_404(
    client: httpx.AsyncClient, kube: FakeKube
) -> None:
    missing = await client.post(url(), json={"workflowDefinitionId": "nope"}, headers=auth())
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    stranger = await client.post(
        url("stranger"), json={"workflowDefinition": LEGACY}, headers=auth()
    )
    assert stranger.status_code == 404
    assert workflows(kube) == []


async def test_the_api_key_is_required(client: httpx.AsyncClient, kube: FakeKube) -> None:
    response = await client.post(url(), json={"workflowDefinition": LEGACY})
    assert response.status_code == 401
    wrong = await client.post(url(), json={"workflowDefinition": LEGACY}, headers=auth("nope"))
    assert wrong.status_code == 401
    assert workflows(kube) == []
