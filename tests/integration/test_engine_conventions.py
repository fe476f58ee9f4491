"""Feature 7 of the engine: Kubernetes conventions. `kubectl wait --for=condition=...`
works, Events tell the outcome of a run (and, when turned on, each dispatch and phase
change), and `observedGeneration` follows the spec."""

from __future__ import annotations

import pytest
from engine_support import (
    agents_ready,
    apply,
    events_for,
    get_workflow,
    options_from,
    patch_spec,
    sim_patch,
    step,
    steps_of,
    wait_event,
    wait_finished,
    wait_workflow,
    when,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

AGENTS = ("alpha", "beta")


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=("alpha:work", "beta:work")))


def _kubectl_wait(stack: OpsCoreStack, name: str, condition: str) -> None:
    stack.cp.kubectl(
        "wait",
        "-n",
        stack.namespace,
        f"workflow/{name}",
        f"--for=condition={condition}",
        "--timeout=60s",
        timeout=90,
    )


def test_kubectl_wait_for_condition_succeeded_returns_when_the_dag_is_done(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    apply(
        stack,
        workflow(
            "waited",
            step("a", capabilities=["work"], dependsOn=[]),
            step("b", capabilities=["work"], dependsOn=[]),
            step("c", capabilities=["work"], dependsOn=["a", "b"]),
        ),
    )
    _kubectl_wait(stack, "waited", "Succeeded")
    wf = get_workflow(stack, "waited")
    assert kv.phase(wf) == "Succeeded"
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("True", "Succeeded")
    assert when(cond["lastTransitionTime"]) >= when(wf["status"]["startTime"])
    assert cond["observedGeneration"] == wf["metadata"]["generation"]


def test_kubectl_wait_for_succeeded_false_returns_when_the_run_fails(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    sim_patch(stack, "alpha", failure_rate=1.0)
    apply(stack, workflow("broken", step("a", agent="alpha")))
    _kubectl_wait(stack, "broken", "Succeeded=False")
    cond = kv.condition(get_workflow(stack, "broken"), "Succeeded")
    assert cond is not None
    assert cond["reason"] == "StepFailed"


def test_events_tell_the_outcome_not_each_dispatch(stack: OpsCoreStack) -> None:
    """By default routine progress is in status only: each Event is an API write."""
    agents_ready(stack, AGENTS)
    apply(
        stack,
        workflow("quiet", step("a", capabilities=["work"]), step("b", capabilities=["work"])),
    )
    wf = wait_finished(stack, "quiet")
    wait_event(stack, "quiet", "WorkflowSucceeded")
    reasons = [e["reason"] for e in events_for(stack, "quiet")]
    assert reasons == ["WorkflowSucceeded"]
    assert all(entry["taskId"] for entry in steps_of(wf).values())


PROGRESS = StackOptions(
    agents=("alpha:work", "beta:work"), operator_env={"OPSCORE_PROGRESS_EVENTS": "true"}
)


@pytest.mark.parametrize("stack_options", [PROGRESS], indirect=True)
def test_progress_events_tell_each_dispatch_and_phase_change(stack: OpsCoreStack) -> None:
    agents_ready(stack, AGENTS)
    apply(
        stack,
        workflow("told", step("a", capabilities=["work"]), step("b", capabilities=["work"])),
    )
    wf = wait_finished(stack, "told")
    wait_event(stack, "told", "WorkflowSucceeded")
    events = events_for(stack, "told")
    reasons = [e["reason"] for e in events]
    dispatched = [e for e in events if e["reason"] == "StepDispatched"]
    assert len(dispatched) == 2
    for name, entry in steps_of(wf).items():
        assert any(entry["taskId"] in e["message"] and name in e["message"] for e in dispatched)
    assert "WorkflowRunning" in reasons
    assert all(e["involvedObject"]["uid"] == wf["metadata"]["uid"] for e in events)
    assert all(e["source"]["component"] == "opscore-operator" for e in events)

    described = stack.cp.kubectl("describe", "workflow", "told", "-n", stack.namespace).stdout
    assert "StepDispatched" in described
    assert "WorkflowSucceeded" in described


def test_observed_generation_follows_spec_changes(stack: OpsCoreStack) -> None:
    agents_ready(stack, AGENTS)
    apply(stack, workflow("tracked", step("a", capabilities=["work"])))
    wf = wait_finished(stack, "tracked")
    assert wf["metadata"]["generation"] == 1
    assert wf["status"]["observedGeneration"] == 1

    patch_spec(stack, "tracked", priority=7)
    wf = wait_workflow(
        stack,
        "tracked",
        lambda wf: wf["status"].get("observedGeneration") == 2,
        what="observedGeneration 2",
    )
    assert wf["metadata"]["generation"] == 2
    assert kv.phase(wf) == "Succeeded"
