"""An agent's health as Ops-Core tracks it: heartbeats (Offline and back), the `paused`
cordon, and deleting an Agent that has work in flight. Real processes throughout; the
simulated agents behave like the reference agent (no heartbeats of their own, `active` and
`idle` right after each task), so the test sends the heartbeats it needs itself."""

from __future__ import annotations

import time
from functools import partial

import pytest
from agent_support import (
    agent,
    agent_for,
    apply,
    patch_agent,
    ready,
    reasons,
    report,
    sim,
    steps_of,
    wait_finished,
    wait_for,
    wait_workflow,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    agents: tuple[str, ...] = getattr(request, "param", ("alpha:hb", "beta:hb"))
    return StackOptions(agents=agents)


def _state(stack: OpsCoreStack, name: str) -> str | None:
    return (agent(stack, name).get("status") or {}).get("state")


def _is_offline(stack: OpsCoreStack, name: str) -> bool:
    return _state(stack, name) == "Offline"


def test_a_silent_agent_goes_offline_its_step_is_retried_elsewhere_and_it_comes_back(
    stack: OpsCoreStack,
) -> None:
    alpha, beta = agent_for(stack, "alpha"), agent_for(stack, "beta")
    alpha_name, beta_name = alpha["metadata"]["name"], beta["metadata"]["name"]
    alpha_id, beta_id = alpha["spec"]["agentId"], beta["spec"]["agentId"]
    for name in (alpha_name, beta_name):
        patch_agent(stack, name, heartbeatTimeoutSeconds=3)
    sim(stack, "PATCH", "/sim/agents/alpha", {"silent": True})  # takes tasks, never reports
    for name in (alpha_name, beta_name):
        wait_for(partial(_is_offline, stack, name), what=f"{name} Offline")

    report(stack, alpha_id, "idle")  # alpha's heartbeat: the only agent available now
    step = {"name": "probe", "capabilities": ["hb"], "retries": {"limit": 1, "backoffSeconds": 2}}
    apply(stack, workflow("hb", step))
    wait_workflow(
        stack,
        "hb",
        lambda wf: steps_of(wf).get("probe", {}).get("agent") == alpha_name,
        what="the first attempt on alpha",
    )
    offline = wait_workflow(
        stack,
        "hb",
        lambda wf: steps_of(wf)["probe"].get("reason") == "AgentOffline",
        what="the attempt failed with AgentOffline",
        timeout=20,
    )
    assert steps_of(offline)["probe"]["phase"] in ("Pending", "Queued")
    report(stack, beta_id, "idle")  # beta is back: the retry goes there
    done = wait_finished(stack, "hb", timeout=30)
    probe = steps_of(done)["probe"]
    assert kv.phase(done) == "Succeeded"
    assert (probe["agent"], probe["attempt"], probe["retries"]) == (beta_name, 2, 1)
    assert "StepRetrying" in reasons(stack, "hb")

    gone = agent(stack, alpha_name)
    assert gone["status"]["state"] == "Offline"
    assert kv.condition(gone, "Available")["reason"] == "HeartbeatTimeout"  # type: ignore[index]
    assert "AgentOffline" in reasons(stack, alpha_name)
    # Counters are routine churn: written once they held still for 2 s.
    wait_for(
        lambda: agent(stack, alpha_name)["status"].get("tasksFailed") == 1,
        what="alpha's failed attempt counted",
    )
    wait_for(
        lambda: agent(stack, beta_name)["status"].get("tasksSucceeded") == 1,
        what="beta's success counted",
    )

    report(stack, alpha_id, "idle")  # alpha's next report brings it back
    wait_for(
        lambda: ready(agent(stack, alpha_name)) == ("True", "Ready"),
        what="alpha Ready again after its next report",
    )
    back = agent(stack, alpha_name)
    assert back["status"]["state"] == "Idle"
    assert kv.condition(back, "Available")["status"] == "True"  # type: ignore[index]
    assert "AgentAvailable" in reasons(stack, alpha_name)


@pytest.mark.parametrize("stack_options", [("solo:pz",)], indirect=True)
def test_a_paused_agent_finishes_its_task_and_takes_no_new_one(stack: OpsCoreStack) -> None:
    solo = agent_for(stack, "solo")["metadata"]["name"]
    sim(stack, "PATCH", "/sim/agents/solo", {"duration_seconds": 2.0})
    first = {"name": "first", "capabilities": ["pz"]}
    second = {"name": "second", "capabilities": ["pz"]}
    apply(stack, workflow("cordon", first, second))
    wait_workflow(
        stack,
        "cordon",
        lambda wf: steps_of(wf).get("first", {}).get("phase") == "Running",
        what="first running",
    )
    patch_agent(stack, solo, paused=True)
    wf = wait_workflow(
        stack,
        "cordon",
        lambda wf: steps_of(wf).get("second", {}).get("phase") == "Queued",
        what="first done on the paused agent, second waiting",
        timeout=30,
    )
    assert steps_of(wf)["first"]["phase"] == "Succeeded"
    assert ready(agent(stack, solo)) == ("False", "Paused")
    wide = stack.cp.kubectl("get", "agents", "-n", stack.namespace, "-o", "wide").stdout
    assert "Paused" in wide  # kubectl get -o wide shows why it is not Ready
    time.sleep(1.5)  # the cordon holds: nothing new reaches the agent
    still = kv.get(stack.cp, "workflow", stack.namespace, "cordon")
    assert steps_of(still)["second"]["phase"] == "Queued"
    assert sim(stack, "GET", "/sim/agents/solo")["tasks_received"] == 1

    patch_agent(stack, solo, paused=False)
    done = wait_finished(stack, "cordon", timeout=30)
    assert kv.phase(done) == "Succeeded"
    assert steps_of(done)["second"]["agent"] == solo

    # A flaky agent shows in its counters and last error.
    sim(stack, "PATCH", "/sim/agents/solo", {"duration_seconds": 0.0, "failure_rate": 1.0})
    apply(stack, workflow("flaky", {"name": "try", "capabilities": ["pz"]}))
    assert kv.phase(wait_finished(stack, "flaky", timeout=30)) == "Failed"
    flaky = wait_for(
        lambda: (body := agent(stack, solo))["status"].get("tasksFailed") == 1 and body,
        what="the failure counted on the agent",
    )
    assert flaky["status"]["tasksSucceeded"] == 2
    assert "TASK_FAILED" not in flaky["status"]["lastError"]  # the message, not the code
    assert "simulated failure" in flaky["status"]["lastError"]
    wide = stack.cp.kubectl("get", "agents", "-n", stack.namespace, "-o", "wide").stdout
    assert "simulated failure" in wide


@pytest.mark.parametrize("stack_options", [("one:dl", "two:dl")], indirect=True)
def test_deleting_an_agent_with_work_in_flight_requeues_the_work(stack: OpsCoreStack) -> None:
    names = {
        agent_for(stack, sim_name)["metadata"]["name"]: sim_name for sim_name in ("one", "two")
    }
    for sim_name in names.values():
        sim(stack, "PATCH", f"/sim/agents/{sim_name}", {"duration_seconds": 3.0})
    apply(stack, workflow("doomed", {"name": "work", "capabilities": ["dl"]}))
    running = wait_workflow(
        stack,
        "doomed",
        lambda wf: steps_of(wf).get("work", {}).get("phase") == "Running",
        what="work running",
    )
    victim = steps_of(running)["work"]["agent"]
    stack.cp.kubectl("delete", "agent", victim, "-n", stack.namespace)
    done = wait_finished(stack, "doomed", timeout=30)
    work = steps_of(done)["work"]
    assert kv.phase(done) == "Succeeded"
    assert work["agent"] != victim
    assert work["agent"] in names
    assert (work["attempt"], work["retries"]) == (2, 0)  # requeued, no retry spent
    assert "StepRequeued" in reasons(stack, "doomed")
