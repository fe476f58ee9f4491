"""Token and cost accounting and budgets on the real stack: agents report `details.usage`,
Ops-Core counts it on the step, the run and the agent, and a spent budget stops a run.

Real API server, operator, sidecar and AgentKit simulator; assertions are on what
`kubectl get -o json` shows, on the Events, and on what the simulated agents received.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from engine_support import (
    Body,
    agent_resource_names,
    agents_ready,
    apply,
    options_from,
    sim_patch,
    sim_received,
    step,
    steps_of,
    wait_event,
    wait_finished,
    wait_workflow,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

AGENTS = ("alpha", "beta")


def usage(tokens_in: int, tokens_out: int, cost: float, model: str = "sim-model") -> Body:
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "model": model,
        "cost": cost,
        "currency": "USD",
    }


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=("alpha:work", "beta:work")))


def agent_status(stack: OpsCoreStack, agent: str) -> Body:
    name = agent_resource_names(stack)[agent]
    body: Body = kv.get(stack.cp, "agent", stack.namespace, name)
    return body.get("status") or {}


def wait_agent_usage(stack: OpsCoreStack, agent: str, field: str, tokens: int) -> Body:
    """Agent status counters are written debounced: wait for them to reach `tokens`."""
    seen: list[Body] = []

    def reached() -> bool:
        seen[:] = [agent_status(stack, agent)]
        return int((seen[0].get(field) or {}).get("totalTokens") or 0) >= tokens

    wait_until(reached, timeout=30, interval=0.2, what=f"{agent} {field} at {tokens} tokens")
    usage: dict[str, Any] = seen[0][field]
    return usage


def test_usage_with_task_ids_is_counted_on_each_step_the_run_and_the_agents(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    sim_patch(stack, "alpha", mode="correlated", usage=usage(100, 20, 0.5))
    sim_patch(stack, "beta", mode="correlated", usage=usage(7, 3, 0.25))
    apply(stack, workflow("billed", step("one", agent="alpha"), step("two", agent="beta")))
    wf = wait_finished(stack, "billed")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    assert steps["one"]["usage"] == {
        "inputTokens": 100,
        "outputTokens": 20,
        "totalTokens": 120,
        "cost": {"USD": 0.5},
        "reports": 1,
    }
    assert steps["two"]["usage"]["totalTokens"] == 10
    assert wf["status"]["usage"]["totalTokens"] == 130
    assert wf["status"]["usage"]["cost"] == {"USD": 0.75}
    assert wait_agent_usage(stack, "alpha", "usage", 120)["totalTokens"] == 120
    wide = stack.cp.kubectl("get", "workflow", "billed", "-n", stack.namespace, "-o", "wide")
    assert "130" in wide.stdout.splitlines()[1]


def test_usage_without_a_task_id_is_the_running_steps_of_a_one_task_agent(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    sim_patch(stack, "alpha", usage=usage(40, 2, 0.1))  # reference mode: no task id
    apply(stack, workflow("anonymous", step("only", agent="alpha")))
    wf = wait_finished(stack, "anonymous")
    assert kv.phase(wf) == "Succeeded"
    assert steps_of(wf)["only"]["usage"]["totalTokens"] == 42
    assert wf["status"]["usage"]["totalTokens"] == 42
    assert "unattributedUsage" not in agent_status(stack, "alpha")


def two_task_agent(stack: OpsCoreStack, agent: str) -> None:
    name = agent_resource_names(stack)[agent]
    patch = json.dumps({"spec": {"maxConcurrentTasks": 2}})
    stack.cp.kubectl("patch", "agent", name, "-n", stack.namespace, "--type", "merge", "-p", patch)


PARALLEL = (step("left", agent="alpha", dependsOn=[]), step("right", agent="alpha", dependsOn=[]))


def test_concurrent_tasks_on_one_agent_with_task_ids_each_count_their_own(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    two_task_agent(stack, "alpha")
    sim_patch(stack, "alpha", mode="correlated", duration_seconds=1.0, usage=usage(10, 5, 0.01))
    apply(stack, workflow("pair", *PARALLEL))
    wf = wait_finished(stack, "pair")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    assert steps["left"]["dispatchedAt"] < steps["right"]["finishedAt"], "they overlapped"
    assert steps["right"]["dispatchedAt"] < steps["left"]["finishedAt"], "they overlapped"
    assert [steps[s]["usage"]["totalTokens"] for s in ("left", "right")] == [15, 15]
    assert wf["status"]["usage"]["totalTokens"] == 30
    assert wait_agent_usage(stack, "alpha", "usage", 30)["totalTokens"] == 30


def test_concurrent_tasks_on_one_agent_without_task_ids_count_as_unattributed(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    two_task_agent(stack, "alpha")
    sim_patch(stack, "alpha", duration_seconds=1.0, usage=usage(10, 5, 0.01))
    apply(stack, workflow("guess", *PARALLEL))
    wf = wait_finished(stack, "guess")
    assert kv.phase(wf) == "Succeeded"
    assert all("usage" not in s for s in steps_of(wf).values()), "no step got a guess"
    assert "usage" not in wf["status"]
    unattributed = wait_agent_usage(stack, "alpha", "unattributedUsage", 15)
    assert unattributed["totalTokens"] >= 15


def test_a_budget_spent_mid_dag_dispatches_nothing_more_and_the_running_step_still_counts(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    sim_patch(stack, "alpha", mode="correlated", usage=usage(80, 20, 0.2))
    sim_patch(stack, "beta", mode="correlated", duration_seconds=3.0, usage=usage(5, 5, 0.01))
    apply(
        stack,
        workflow(
            "capped",
            step("quick", agent="alpha", dependsOn=[]),
            step("slow", agent="beta", dependsOn=[]),
            step("after-quick", agent="alpha", dependsOn=["quick"]),
            budget={"maxTokens": 50},
        ),
    )
    over = wait_workflow(
        stack,
        "capped",
        lambda wf: steps_of(wf).get("quick", {}).get("phase") == "Succeeded",
        what="quick to succeed",
    )
    assert steps_of(over)["slow"]["phase"] == "Running"
    wait_event(stack, "capped", "BudgetExceeded")
    wf = wait_finished(stack, "capped")
    assert kv.phase(wf) == "Failed"
    cond = next(c for c in wf["status"]["conditions"] if c["type"] == "Succeeded")
    assert cond["reason"] == "BudgetExceeded"
    steps = steps_of(wf)
    assert steps["slow"]["phase"] == "Succeeded"
    assert steps["slow"]["usage"]["totalTokens"] == 10
    assert steps["after-quick"]["phase"] == "Cancelled"
    assert steps["after-quick"]["reason"] == "BudgetExceeded"
    assert wf["status"]["usage"]["totalTokens"] == 110
    dispatched = {t.get("opscore_task_id", "").split(":")[1] for t in sim_received(stack)}
    assert "after-quick" not in dispatched


BAD_USAGE = [
    {"input_tokens": -1},
    {"input_tokens": 1, "output_tokens": 1, "total_tokens": 5},
    {"cost": 1.0},
    {"cost": 1.0, "currency": "dollars"},
]


@pytest.mark.parametrize("bad", BAD_USAGE, ids=["negative", "total", "no-currency", "currency"])
def test_a_bad_usage_report_is_answered_422_and_stores_nothing(
    stack: OpsCoreStack, bad: dict[str, Any]
) -> None:
    agents_ready(stack, AGENTS)
    agent_id = kv.get(stack.cp, "agent", stack.namespace, agent_resource_names(stack)["alpha"])
    agent_key = agent_id["spec"]["agentId"]
    before = agent_status(stack, "alpha").get("reports")
    answer = httpx.post(
        f"{stack.sidecar_url}/v1/opscore/agent/{agent_key}/state",
        json={
            "agentId": agent_key,
            "timestamp": datetime.now(UTC).isoformat(),
            "state": "idle",
            "details": {"usage": bad},
        },
        headers={"Authorization": f"Bearer {stack.options.api_key}"},
        timeout=10,
        trust_env=False,
    )
    assert answer.status_code == 422, answer.text
    assert "details.usage is invalid" in answer.text
    assert agent_status(stack, "alpha").get("reports") == before
