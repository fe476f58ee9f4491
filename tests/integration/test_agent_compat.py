"""What existing clients and agents speak keeps working: the earlier Ops-Core's workflow
trigger and state read on the sidecar, agents reporting with exact correlation through
`opscore_client`, and discovery by polling an AgentKit that lists its agents."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from agent_support import (
    agent_for,
    agents,
    apply,
    holders,
    ready,
    sim,
    sim_agent_id,
    steps_of,
    wait_finished,
    wait_for,
    wait_workflow,
    workflow,
)

from opscore_client import OpsCoreClient
from opscore_logic.legacy import template_manifest, validate_legacy
from opscore_logic.registration import CREATED_BY_POLL, created_by
from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

LEGACY: dict[str, Any] = {
    "id": "Research_Report",
    "name": "Research report",
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


def _post(stack: OpsCoreStack, path: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.sidecar_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.options.api_key}"},
        trust_env=False,
        timeout=10,
    )


def test_the_earlier_opscore_api_starts_workflows_and_reads_state(stack: OpsCoreStack) -> None:
    researcher = agent_for(stack, "researcher")["spec"]["agentId"]
    agent_for(stack, "writer")
    template = template_manifest(validate_legacy(LEGACY), namespace=stack.namespace)
    stack.cp.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(template))

    trigger = f"/v1/opscore/agent/{researcher}/workflow"
    by_id = _post(
        stack, trigger, {"workflowDefinitionId": "Research_Report", "initialPayload": {"q": 1}}
    )
    inline = _post(stack, trigger, {"workflowDefinition": LEGACY})
    for response in (by_id, inline):
        assert response.status_code == 202, response.text
        answer = response.json()
        assert set(answer) == {"sessionId", "workflowId", "message"}
        done = wait_finished(stack, answer["workflowId"], timeout=60)
        assert kv.phase(done) == "Succeeded"
        assert done["metadata"]["uid"] == answer["sessionId"]
        assert [s["phase"] for s in done["status"]["steps"]] == ["Succeeded"] * 2
    started = kv.get(stack.cp, "workflow", stack.namespace, by_id.json()["workflowId"])
    assert started["spec"]["templateRef"] == {"name": "research-report"}
    assert started["spec"]["inputs"] == {"q": 1}
    # A task id (in sim's books) carries the Workflow uid as its session.
    tasks = sim(stack, "GET", "/sim/tasks")["tasks"]
    assert by_id.json()["sessionId"] in {t["opscore_session_id"] for t in tasks}

    both = _post(stack, trigger, {"workflowDefinitionId": "x", "workflowDefinition": LEGACY})
    assert both.status_code == 422

    state = httpx.get(
        f"{stack.sidecar_url}/v1/opscore/agent/{researcher}/state",
        headers={"Authorization": f"Bearer {stack.options.api_key}"},
        trust_env=False,
    )
    assert state.status_code == 200
    assert set(state.json()) == {"agentId", "state", "details", "timestamp"}
    assert (state.json()["agentId"], state.json()["state"]) == (researcher, "idle")


def test_an_agent_using_opscore_client_settles_its_task_exactly(stack: OpsCoreStack) -> None:
    # An agent of our own: registered in AgentKit (its contact endpoint goes nowhere, and
    # AgentKit ignores that), driven by the test through `opscore_client`.
    registered = sim(
        stack,
        "POST",
        "/v1/agents/register",
        {
            "agentName": "by-hand",
            "version": "1.0.0",
            "capabilities": ["manual"],
            "contactEndpoint": "http://127.0.0.1:9/",
            "metadata": {"description": "driven by the test"},
        },
    )
    agent_id = registered["data"]["agentId"]
    with OpsCoreClient(stack.sidecar_url, stack.options.api_key) as client:
        client.report(agent_id, "idle")
        wait_for(
            lambda: (
                holders(stack, agent_id)
                and holders(stack, agent_id)[0]["spec"].get("capabilities") == ["manual"]
            ),
            what="the agent registered and reporting",
        )
        apply(stack, workflow("exact", {"name": "ask", "capabilities": ["manual"]}))
        running = wait_workflow(
            stack,
            "exact",
            lambda wf: steps_of(wf).get("ask", {}).get("phase") == "Running",
            what="dispatched to the hand-driven agent",
        )
        task_id = steps_of(running)["ask"]["taskId"]
        client.report(agent_id, "idle", task_id="someone-else:step:0:1")  # not ours: ignored
        client.report(agent_id, "active", task_id=task_id)
        client.report(agent_id, "idle", task_id=task_id, output={"answer": 42})
    done = wait_finished(stack, "exact", timeout=30)
    assert kv.phase(done) == "Succeeded"
    assert steps_of(done)["ask"]["output"] == {"answer": 42}


@pytest.mark.parametrize(
    "stack_options",
    [
        StackOptions(
            agents=("lost:polled",),
            sim_args=("--list-endpoint",),
            # AgentKit signs with another secret: every webhook is lost (401).
            sidecar_env={"OPSCORE_WEBHOOK_SECRET": "not-the-secret-agentkit-uses"},
            operator_env={"OPSCORE_AGENTKIT_POLL_SECONDS": "0.5"},
        )
    ],
)
def test_polling_agentkit_repairs_lost_webhooks(stack: OpsCoreStack) -> None:
    lost_id = sim_agent_id(stack, "lost")
    # Known from its first report, completed from AgentKit's list.
    found = wait_for(
        lambda: next(
            (a for a in holders(stack, lost_id) if a["spec"].get("capabilities") == ["polled"]),
            None,
        ),
        what="the reporting agent's registration filled in by polling",
    )
    assert found["spec"]["agentName"] == "lost"
    # An agent that never reported at all is created from the list.
    quiet = sim(
        stack,
        "POST",
        "/v1/agents/register",
        {
            "agentName": "quiet",
            "version": "2.0.0",
            "capabilities": ["silent"],
            "contactEndpoint": "http://127.0.0.1:9/",
        },
    )["data"]["agentId"]
    created = wait_for(
        lambda: holders(stack, quiet)[0] if holders(stack, quiet) else None,
        what="an Agent created by polling",
    )
    assert created_by(created) == CREATED_BY_POLL
    assert created["spec"]["version"] == "2.0.0"
    assert ready(created)[1] in (None, "Unavailable")  # known, but it has not reported
    apply(stack, workflow("polled", {"name": "go", "capabilities": ["polled"]}))
    assert kv.phase(wait_finished(stack, "polled", timeout=30)) == "Succeeded"
    assert len(agents(stack)) == 2
