"""Feature 4 of the engine: retries and timeouts. An agent that never reports back does
not hang the run (the attempt times out and is retried elsewhere); retries stop at the
limit; the workflow deadline ends the run as TimedOut."""

from __future__ import annotations

import json

import pytest
from engine_support import (
    agent_resource_names,
    agents_ready,
    apply,
    events_for,
    options_from,
    sim_patch,
    sim_received,
    step,
    steps_of,
    wait_finished,
    wait_workflow,
    when,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=("alpha:work", "beta:work")))


def test_a_silent_agent_times_out_and_the_retry_succeeds_on_another_agent(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("alpha", "beta"))
    names = agent_resource_names(stack)
    sim_patch(stack, "alpha", silent=True)  # takes the task, never reports
    # Cordon beta until the first attempt is on alpha, so the first pick is not a coin toss.
    _set_paused(stack, names["beta"], True)
    apply(
        stack,
        workflow(
            "patient",
            step(
                "crunch",
                capabilities=["work"],
                timeoutSeconds=3,
                retries={"limit": 1, "backoffSeconds": 0},
            ),
        ),
    )
    wait_workflow(
        stack,
        "patient",
        lambda wf: steps_of(wf)["crunch"].get("agent") == names["alpha"],
        what="the first attempt on alpha",
    )
    _set_paused(stack, names["beta"], False)
    wf = wait_finished(stack, "patient", timeout=60)
    assert kv.phase(wf) == "Succeeded"
    crunch = steps_of(wf)["crunch"]
    assert (crunch["attempt"], crunch["retries"]) == (2, 1)
    assert crunch["agent"] == names["beta"]
    received = [(t["agentName"], t["opscore_task_id"]) for t in sim_received(stack)]
    assert [agent for agent, _ in received] == ["alpha", "beta"]
    assert received[1][1] == crunch["taskId"]
    assert received[0][1] != received[1][1]
    retrying = [e for e in events_for(stack, "patient") if e["reason"] == "StepRetrying"]
    assert retrying, "a StepRetrying event tells why the step was retried"
    assert f"no result from agent {names['alpha']} within 3s" in retrying[0]["message"]


@pytest.mark.parametrize("stack_options", [StackOptions(agents=("alpha:work",))], indirect=True)
def test_an_agent_whose_idle_was_lost_takes_the_retry_once_the_attempt_times_out(
    stack: OpsCoreStack,
) -> None:
    """Its `active` was stored, its `idle` lost (a sidecar restart between the two): the
    `active` was about the timed-out attempt, so it does not hold the only agent forever."""
    agents_ready(stack, ("alpha",))
    names = agent_resource_names(stack)
    sim_patch(stack, "alpha", lose_last_report_next=1)
    apply(
        stack,
        workflow(
            "forgetful",
            step(
                "crunch",
                capabilities=["work"],
                timeoutSeconds=3,
                retries={"limit": 1, "backoffSeconds": 0},
            ),
        ),
    )
    wf = wait_finished(stack, "forgetful", timeout=60)
    assert kv.phase(wf) == "Succeeded"
    crunch = steps_of(wf)["crunch"]
    assert (crunch["attempt"], crunch["agent"]) == (2, names["alpha"])
    assert [t["agentName"] for t in sim_received(stack)] == ["alpha", "alpha"]
    agents_ready(stack, ("alpha",))


def _set_paused(stack: OpsCoreStack, agent: str, paused: bool) -> None:
    patch = json.dumps({"spec": {"paused": paused}})
    stack.cp.kubectl("patch", "-n", stack.namespace, "agent", agent, "--type", "merge", "-p", patch)


@pytest.mark.parametrize(
    "stack_options", [StackOptions(agents=("alpha:work",), failure_rate=1.0)], indirect=True
)
def test_a_failing_step_is_tried_limit_plus_one_times_then_fails(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha",))
    apply(
        stack,
        workflow(
            "doomed",
            step(
                "crunch",
                capabilities=["work"],
                retries={"limit": 1, "backoffSeconds": 0.2},
            ),
        ),
    )
    wf = wait_finished(stack, "doomed")
    assert kv.phase(wf) == "Failed"
    crunch = steps_of(wf)["crunch"]
    assert (crunch["phase"], crunch["attempt"], crunch["retries"]) == ("Failed", 2, 1)
    assert "TASK_FAILED" in crunch["message"]
    assert "after 1 retries" in crunch["message"]
    task_ids = [t["opscore_task_id"] for t in sim_received(stack)]
    assert len(task_ids) == 2
    assert len(set(task_ids)) == 2, "each attempt has its own task id"
    assert task_ids[-1] == crunch["taskId"]
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "StepFailed")


def test_the_workflow_deadline_fails_the_run_as_timed_out(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha", "beta"))
    sim_patch(stack, "alpha", silent=True)
    sim_patch(stack, "beta", silent=True)
    apply(
        stack,
        workflow("late", step("crunch", capabilities=["work"]), deadlineSeconds=2),
    )
    wf = wait_finished(stack, "late", timeout=60)
    assert kv.phase(wf) == "Failed"
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "TimedOut")
    assert "deadline of 2s" in cond["message"]
    crunch = steps_of(wf)["crunch"]
    assert (crunch["phase"], crunch["reason"]) == ("Failed", "DeadlineExceeded")
    status = wf["status"]
    elapsed = (when(status["completionTime"]) - when(status["startTime"])).total_seconds()
    assert 2 <= elapsed < 15
