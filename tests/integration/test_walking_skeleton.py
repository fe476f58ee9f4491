"""A workflow applied with kubectl runs to the end through AgentKit and agent reports.

Everything is real: the API server, the operator, the sidecar and the AgentKit simulator
are separate processes talking HTTP, and the agents behave like the reference agent (do
the work, then report `active` and `idle` ~10 ms apart, with no task id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack

HELLO = REPO / "examples" / "hello-workflow.yaml"


def _agents_ready(stack: OpsCoreStack, names: tuple[str, ...]) -> None:
    def ready() -> bool:
        agents = [kv.agent_named(stack.cp, stack.namespace, n) for n in names]
        return all(a is not None and kv.is_ready(a) for a in agents)

    wait_until(ready, timeout=60, what=f"agents {names} registered and Ready")


def _apply(stack: OpsCoreStack, path: Path | None = None, text: str | None = None) -> None:
    if path is not None:
        stack.cp.kubectl("apply", "-n", stack.namespace, "-f", str(path))
    else:
        stack.cp.kubectl("apply", "-n", stack.namespace, "-f", "-", input=text)


def _finished(stack: OpsCoreStack, name: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> bool:
        return kv.phase(kv.get(stack.cp, "workflow", stack.namespace, name)) in (
            "Succeeded",
            "Failed",
            "Cancelled",
        )

    wait_until(done, timeout=timeout, what=f"workflow {name} to finish")
    result: dict[str, Any] = kv.get(stack.cp, "workflow", stack.namespace, name)
    return result


def test_example_workflow_succeeds_and_kubectl_wait_sees_it(stack: OpsCoreStack) -> None:
    _agents_ready(stack, ("researcher", "writer", "reviewer"))
    _apply(stack, HELLO)
    stack.cp.kubectl(
        "wait",
        "-n",
        stack.namespace,
        "workflow/hello",
        "--for=condition=Succeeded",
        "--timeout=60s",
        timeout=90,
    )
    wf = kv.get(stack.cp, "workflow", stack.namespace, "hello")
    status = wf["status"]
    assert status["phase"] == "Succeeded"
    assert status["progress"] == "3/3"
    assert status["observedGeneration"] == wf["metadata"]["generation"]
    assert [s["phase"] for s in status["steps"]] == ["Succeeded"] * 3
    started = [s["startedAt"] for s in status["steps"]]
    assert started == sorted(started), "steps ran one after another"
    agents = {s["name"]: s["agent"] for s in status["steps"]}
    researcher = kv.agent_named(stack.cp, stack.namespace, "researcher")
    assert researcher is not None
    assert agents["research"] == researcher["metadata"]["name"]


def test_each_task_reaches_agentkit_exactly_once(stack: OpsCoreStack) -> None:
    _agents_ready(stack, ("researcher", "writer", "reviewer"))
    _apply(stack, HELLO)
    wf = _finished(stack, "hello")
    task_ids = [s["taskId"] for s in wf["status"]["steps"]]
    counts = stack.sim_tasks()
    assert {t: counts.get(t) for t in task_ids} == dict.fromkeys(task_ids, 1)
    assert sum(counts.values()) == 3


def test_agent_error_fails_the_workflow_with_the_agents_message(stack: OpsCoreStack) -> None:
    _agents_ready(stack, ("researcher", "writer", "reviewer"))
    httpx.patch(
        f"{stack.sim_url}/sim/agents/writer", json={"failure_rate": 1.0}, trust_env=False
    ).raise_for_status()
    _apply(stack, HELLO)
    wf = _finished(stack, "hello")
    status = wf["status"]
    assert status["phase"] == "Failed"
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["research"]["phase"] == "Succeeded"
    assert steps["draft"]["phase"] == "Failed"
    assert "TASK_FAILED" in steps["draft"]["message"]
    assert steps["review"]["phase"] == "Skipped"
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "StepFailed")
    assert "TASK_FAILED" in cond["message"]


def _report(agent_id: str, state: str = "idle") -> dict[str, Any]:
    return {
        "agentId": agent_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "state": state,
        "details": {},
    }


def test_report_with_a_bad_key_gets_401_and_changes_nothing(stack: OpsCoreStack) -> None:
    resp = httpx.post(
        f"{stack.sidecar_url}/v1/opscore/agent/intruder/state",
        json=_report("intruder"),
        headers={"Authorization": "Bearer not-the-key"},
        trust_env=False,
    )
    assert resp.status_code == 401
    assert resp.headers.get("www-authenticate", "").lower().startswith("bearer")
    names = [a["metadata"]["name"] for a in kv.items(stack.cp, "agents", stack.namespace)]
    assert "intruder" not in names


def test_report_before_registration_creates_the_agent(stack: OpsCoreStack) -> None:
    resp = httpx.post(
        f"{stack.sidecar_url}/v1/opscore/agent/early-bird/state",
        json=_report("early-bird"),
        headers={"Authorization": f"Bearer {stack.options.api_key}"},
        trust_env=False,
    )
    assert resp.status_code == 202
    assert resp.json() == {"status": "success", "message": "State update accepted"}
    agent = kv.get(stack.cp, "agent", stack.namespace, "early-bird")
    assert agent["spec"]["agentId"] == "early-bird"
    assert agent["status"]["reports"][-1]["state"] == "idle"
    wait_until(
        lambda: (
            (kv.get(stack.cp, "agent", stack.namespace, "early-bird")["status"]).get("state")
            == "Idle"
        ),
        timeout=20,
        what="the operator to derive state Idle",
    )
