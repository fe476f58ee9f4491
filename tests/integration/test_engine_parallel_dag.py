"""Feature 1 of the engine: steps form a DAG; `when` skips; `continueOnFailure` carries on.

Real API server, operator, sidecar and AgentKit simulator; assertions are on what
`kubectl get -o json` shows and on what the simulated agents received.
"""

from __future__ import annotations

import pytest
from engine_support import (
    agents_ready,
    apply,
    options_from,
    overlaps,
    sim_patch,
    sim_received,
    step,
    steps_of,
    wait_finished,
    when,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

AGENTS = ("alpha", "beta", "gamma")


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(
        request, StackOptions(agents=("alpha:work", "beta:work", "gamma:work"), task_seconds=1.0)
    )


def test_independent_steps_run_in_parallel_on_different_agents_and_the_join_waits(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    apply(
        stack,
        workflow(
            "fan",
            step("left", agent="alpha", dependsOn=[]),
            step("right", agent="beta", dependsOn=[]),
            step("join", agent="gamma", dependsOn=["left", "right"]),
        ),
    )
    wf = wait_finished(stack, "fan")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    left, right, join = steps["left"], steps["right"], steps["join"]
    assert left["agent"] != right["agent"]
    assert overlaps(left, right), "left and right ran at the same time"
    assert when(join["dispatchedAt"]) >= max(when(left["finishedAt"]), when(right["finishedAt"]))
    assert wf["status"]["progress"] == "3/3"


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(agents=("alpha:work", "beta:work", "gamma:work"), task_seconds=0.0)],
    indirect=True,
)
def test_a_false_when_skips_the_step_with_the_reason_and_the_rest_runs(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    apply(
        stack,
        workflow(
            "conditional",
            step("check", agent="alpha"),
            step("deep-scan", agent="beta", when="inputs.mode == full"),
            step("report", agent="gamma", when="steps.check.phase == Succeeded"),
            inputs={"mode": "quick"},
        ),
    )
    wf = wait_finished(stack, "conditional")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    assert steps["check"]["phase"] == "Succeeded"
    skipped = steps["deep-scan"]
    assert (skipped["phase"], skipped["reason"]) == ("Skipped", "WhenFalse")
    assert "inputs.mode == full" in skipped["message"]
    assert "taskId" not in skipped
    assert steps["report"]["phase"] == "Succeeded"
    assert {t["agentName"] for t in sim_received(stack)} == {"alpha", "gamma"}


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(agents=("alpha:work", "beta:work", "gamma:work"), task_seconds=0.0)],
    indirect=True,
)
def test_continue_on_failure_lets_dependents_run_and_the_workflow_succeed(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    sim_patch(stack, "beta", failure_rate=1.0)
    apply(
        stack,
        workflow(
            "tolerant",
            step("prepare", agent="alpha"),
            step("optional-lint", agent="beta", continueOnFailure=True),
            step("publish", agent="gamma"),
        ),
    )
    wf = wait_finished(stack, "tolerant")
    steps = steps_of(wf)
    assert steps["optional-lint"]["phase"] == "Failed"
    assert "TASK_FAILED" in steps["optional-lint"]["message"]
    assert steps["publish"]["phase"] == "Succeeded"
    assert kv.phase(wf) == "Succeeded"
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert cond["status"] == "True"
