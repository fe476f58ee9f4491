"""AgentKit misbehaving the ways the real one does: down for a while (503), slow, and
restarted (it keeps agents in memory, so it forgets them all; an agent that registers
again gets a new id). Ops-Core must ride these out without failing steps or blocking
other workflows, and say what is going on in the resources' conditions."""

from __future__ import annotations

from datetime import datetime

import pytest
from agent_support import (
    agent,
    agent_for,
    agents,
    apply,
    ready,
    sim,
    sim_agent_id,
    steps_of,
    wait_finished,
    wait_for,
    wait_workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

API_VERSION = "opscore.opspawn.io/v1alpha1"


def one_step(name: str, capability: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": [{"name": "only", "capabilities": [capability]}], **spec},
    }


def reachable(wf: dict[str, object]) -> tuple[str | None, str | None]:
    cond = kv.condition(wf, "AgentKitReachable")
    return (cond or {}).get("status"), (cond or {}).get("reason")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_an_agentkit_outage_delays_steps_without_failing_them(stack: OpsCoreStack) -> None:
    agent_for(stack, "researcher")
    sim(stack, "POST", "/sim/outage", {"seconds": 6, "mode": "503"})
    apply(stack, one_step("through-outage", "research"))
    down = wait_workflow(
        stack,
        "through-outage",
        lambda wf: reachable(wf) == ("False", "ServerError"),
        what="AgentKitReachable=False while AgentKit answers 503",
        timeout=20,
    )
    only = steps_of(down)["only"]
    assert only["phase"] in ("Pending", "Queued", "Running")
    assert only["retries"] == 0
    assert "503" in (kv.condition(down, "AgentKitReachable") or {}).get("message", "")
    done = wait_finished(stack, "through-outage", timeout=40)
    assert kv.phase(done) == "Succeeded"
    assert steps_of(done)["only"]["retries"] == 0  # the outage spent no retry
    wait_workflow(
        stack,
        "through-outage",
        lambda wf: reachable(wf) == ("True", "Reachable"),
        what="AgentKitReachable=True once dispatches get through",
        timeout=10,
    )


def test_a_slow_agentkit_blocks_no_other_workflow(stack: OpsCoreStack) -> None:
    for name in ("researcher", "writer", "reviewer"):
        agent_for(stack, name)
    delay = 3.0
    sim(stack, "POST", "/sim/outage", {"seconds": 60, "mode": "slow", "delay_seconds": delay})
    try:
        names = {"slow-research": "research", "slow-writing": "writing", "slow-review": "review"}
        manifest = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [one_step(n, c) for n, c in names.items()]
            + [one_step("nobody-can", "no-such-capability")],
        }
        apply(stack, manifest)
        # While three dispatches hang in AgentKit, a control verb on another workflow is
        # acted on at once.
        wait_workflow(
            stack,
            "nobody-can",
            lambda wf: steps_of(wf).get("only", {}).get("phase") == "Queued",
            what="queued",
        )
        stack.cp.kubectl(
            "patch",
            "workflow",
            "nobody-can",
            "-n",
            stack.namespace,
            "--type",
            "merge",
            "-p",
            '{"spec": {"cancel": true}}',
        )
        cancelled = wait_workflow(
            stack,
            "nobody-can",
            lambda wf: kv.phase(wf) == "Cancelled",
            what="cancelled while AgentKit is slow",
            timeout=delay,  # sooner than one slow dispatch
        )
        assert kv.phase(cancelled) == "Cancelled"
        finished = [wait_finished(stack, name, timeout=60) for name in names]
    finally:
        sim(stack, "POST", "/sim/outage", {"seconds": 0})
    assert [kv.phase(wf) for wf in finished] == ["Succeeded"] * 3
    starts = [_time(wf["status"]["startTime"]) for wf in finished]
    ends = [_time(wf["status"]["completionTime"]) for wf in finished]
    # Serial dispatches would take at least 3 x delay; concurrent ones about one delay.
    assert (max(ends) - min(starts)).total_seconds() < 2 * delay


@pytest.mark.parametrize("stack_options", [StackOptions(agents=("forgetful:fg",))])
def test_an_agentkit_restart_keeps_one_agent_that_takes_the_new_id(stack: OpsCoreStack) -> None:
    before = agent_for(stack, "forgetful")
    old_id = before["spec"]["agentId"]
    assert before["metadata"]["name"] == "forgetful"  # named after its agentName
    apply(stack, one_step("before-restart", "fg"))
    assert kv.phase(wait_finished(stack, "before-restart", timeout=30)) == "Succeeded"
    wait_for(
        lambda: (agent(stack, "forgetful").get("status") or {}).get("tasksSucceeded") == 1,
        what="the first task counted",
    )

    assert sim(stack, "POST", "/sim/forget") == {"forgotten": 1}
    apply(stack, one_step("after-restart", "fg"))
    wait_for(
        lambda: ready(agent(stack, "forgetful")) == ("False", "NotRegisteredInAgentKit"),
        what="the forgotten agent marked NotRegisteredInAgentKit",
    )
    waiting = wait_workflow(
        stack,
        "after-restart",
        lambda wf: steps_of(wf).get("only", {}).get("phase") == "Queued",
        what="the step waiting for an agent AgentKit knows",
    )
    assert steps_of(waiting)["only"]["retries"] == 0

    # The agent registers again (as it would on its own restart): AgentKit gives it a new
    # id under the same name, so the same Agent takes the new id, and the step runs there.
    sim(stack, "POST", "/sim/agents/forgetful/register")
    new_id = sim_agent_id(stack, "forgetful")
    assert new_id != old_id
    done = wait_finished(stack, "after-restart", timeout=30)
    assert kv.phase(done) == "Succeeded"
    assert steps_of(done)["only"]["agent"] == "forgetful"
    [task] = [
        t
        for t in sim(stack, "GET", "/sim/tasks")["tasks"]
        if (t.get("payload") or {}).get("workflow") == f"{stack.namespace}/after-restart"
    ]
    assert task["agentId"] == new_id

    after = agent_for(stack, "forgetful")  # the one Agent holding the new id, Ready
    assert after["metadata"]["name"] == "forgetful"
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert (after["spec"]["agentId"], after["spec"]["previousAgentId"]) == (new_id, old_id)
    wait_for(
        lambda: [a["metadata"]["name"] for a in agents(stack)] == ["forgetful"],
        what="no second Agent beside it (the first report's one merged)",
    )
    wait_for(
        lambda: (agent(stack, "forgetful").get("status") or {}).get("tasksSucceeded") == 2,
        what="its counters kept and the new task counted",
    )
