"""Feature 2 of the engine: capability routing among idle agents, queueing with a reason,
and `priority` across workflows competing for one agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from engine_support import (
    agent_resource_names,
    agents_ready,
    apply,
    options_from,
    overlaps,
    sim_received,
    step,
    steps_of,
    wait_finished,
    wait_step,
    wait_workflow,
    when,
    workflow,
)
from prometheus_client.parser import text_string_to_metric_families

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

SOLO = StackOptions(agents=("solo:work",), task_seconds=3.0)


def waiting_for_agents(stack: OpsCoreStack) -> float:
    """The operator's `opscore_workflows_waiting_for_agents` gauge."""
    text = httpx.get(
        f"http://127.0.0.1:{stack.operator_metrics_port}/metrics", timeout=10, trust_env=False
    ).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "opscore_workflows_waiting_for_agents":
                return sample.value
    raise AssertionError("the operator exports no opscore_workflows_waiting_for_agents")


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(
        request,
        StackOptions(
            agents=("researcher:research,analysis", "writer:writing,analysis", "reviewer:review"),
            task_seconds=1.0,
        ),
    )


def test_capability_steps_run_on_idle_agents_offering_the_capabilities(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("researcher", "writer", "reviewer"))
    names = agent_resource_names(stack)
    apply(
        stack,
        workflow(
            "routed",
            step("cost", capabilities=["analysis"], dependsOn=[]),
            step("risk", capabilities=["analysis"], dependsOn=[]),
            step("check", capabilities=["review"], dependsOn=[]),
        ),
    )
    wf = wait_finished(stack, "routed")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    analysts = {names["researcher"], names["writer"]}
    assert {steps["cost"]["agent"], steps["risk"]["agent"]} == analysts
    assert overlaps(steps["cost"], steps["risk"]), "both analysis steps ran at once"
    assert steps["check"]["agent"] == names["reviewer"]
    by_agent = {t["opscore_task_id"]: t["agentName"] for t in sim_received(stack)}
    assert by_agent[steps["check"]["taskId"]] == "reviewer"


def test_an_agent_selector_restricts_routing_to_labelled_agents(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("researcher", "writer", "reviewer"))
    names = agent_resource_names(stack)
    stack.cp.kubectl("label", "-n", stack.namespace, "agent", names["writer"], "tier=gold")
    apply(
        stack,
        workflow(
            "picky",
            step(
                "analyse",
                capabilities=["analysis"],
                agentSelector={"matchLabels": {"tier": "gold"}},
            ),
        ),
    )
    wf = wait_finished(stack, "picky")
    assert kv.phase(wf) == "Succeeded"
    assert steps_of(wf)["analyse"]["agent"] == names["writer"]


@pytest.mark.parametrize("stack_options", [SOLO], indirect=True)
def test_with_one_agent_the_second_parallel_step_waits_queued_then_runs(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("solo",))
    apply(
        stack,
        workflow(
            "contended",
            step("first", capabilities=["work"], dependsOn=[]),
            step("second", capabilities=["work"], dependsOn=[]),
        ),
    )
    queued = wait_workflow(
        stack,
        "contended",
        lambda wf: any(s["phase"] == "Queued" for s in steps_of(wf).values()),
        what="a step Queued",
    )
    waiting = next(s for s in steps_of(queued).values() if s["phase"] == "Queued")
    assert waiting["reason"] == "NoAgentAvailable"
    assert "waiting for a free agent with capabilities [work]" in waiting["message"]
    assert kv.phase(queued) == "Running"

    wf = wait_finished(stack, "contended")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    ran_first = steps["first" if waiting["name"] == "second" else "second"]
    assert when(steps[waiting["name"]]["dispatchedAt"]) >= when(ran_first["finishedAt"])


@pytest.mark.parametrize(
    ("stack_options", "low_priority", "high_priority"),
    [(SOLO, 0, 10), (SOLO, 5, 5)],
    indirect=["stack_options"],
    ids=["higher-priority-first", "equal-priority-older-first"],
)
def test_the_free_agent_goes_to_the_higher_priority_then_the_older_workflow(
    stack: OpsCoreStack, low_priority: int, high_priority: int
) -> None:
    """`older` is created first with `low_priority`, `newer` after it with `high_priority`:
    with different priorities the higher wins, with equal ones the older."""
    agents_ready(stack, ("solo",))
    apply(stack, workflow("blocker", step("hold", capabilities=["work"])))
    wait_step(stack, "blocker", "hold", "Running")
    apply(stack, workflow("older", step("go", capabilities=["work"]), priority=low_priority))
    # Queued behind the busy agent: held in the operator's waiting room, not written (the
    # run reads as Pending, the CRD default, until its step is dispatched).
    wait_until(lambda: waiting_for_agents(stack) == 1, timeout=30, what="older waiting")
    older = kv.get(stack.cp, "workflow", stack.namespace, "older")
    assert older["status"] == {"phase": "Pending"}
    # creationTimestamp has 1 s resolution (ties go by name, and "newer" < "older"): make
    # the second workflow visibly younger.
    created = when(older["metadata"]["creationTimestamp"])
    wait_until(
        lambda: datetime.now(UTC) >= created + timedelta(seconds=1),
        timeout=5,
        what="the next second",
    )
    apply(stack, workflow("newer", step("go", capabilities=["work"]), priority=high_priority))
    wait_until(lambda: waiting_for_agents(stack) == 2, timeout=30, what="newer waiting")

    for name in ("blocker", "older", "newer"):
        assert kv.phase(wait_finished(stack, name)) == "Succeeded"
    order = [t["opscore_task_id"] for t in sim_received(stack)]
    first, second = ("newer", "older") if high_priority > low_priority else ("older", "newer")
    expected = [
        steps_of(kv.get(stack.cp, "workflow", stack.namespace, name))[s]["taskId"]
        for name, s in (("blocker", "hold"), (first, "go"), (second, "go"))
    ]
    assert order == expected
