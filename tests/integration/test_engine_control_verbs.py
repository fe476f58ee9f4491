"""Feature 5 of the engine: control verbs in spec, driven with `kubectl patch`: suspend and
resume, cancel, retry a failed run (`retryGeneration`), and `ttlSecondsAfterFinished`."""

from __future__ import annotations

import pytest
from engine_support import (
    agents_ready,
    apply,
    get_workflow,
    operator_log,
    options_from,
    patch_spec,
    sim_agent,
    sim_patch,
    sim_received,
    step,
    steps_of,
    wait_event,
    wait_finished,
    wait_step,
    wait_workflow,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

SLOW = StackOptions(agents=("alpha:work",), task_seconds=2.0)


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=("alpha:work", "beta:work")))


@pytest.mark.parametrize("stack_options", [SLOW], indirect=True)
def test_suspend_holds_new_dispatches_and_unsuspending_resumes(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha",))
    apply(
        stack,
        workflow("pausable", step("one", capabilities=["work"]), step("two", agent="alpha")),
    )
    wait_step(stack, "pausable", "one", "Running")
    patch_spec(stack, "pausable", suspend=True)

    held = wait_workflow(
        stack,
        "pausable",
        lambda wf: (
            steps_of(wf)["one"]["phase"] == "Succeeded"
            and steps_of(wf)["two"].get("reason") == "Suspended"
        ),
        what="step one done and step two held",
    )
    assert kv.phase(held) == "Suspended"
    assert steps_of(held)["two"]["phase"] == "Pending"
    cond = kv.condition(held, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("Unknown", "Suspended")
    assert len(sim_received(stack)) == 1, "nothing was dispatched while suspended"

    patch_spec(stack, "pausable", suspend=False)
    wf = wait_finished(stack, "pausable")
    assert kv.phase(wf) == "Succeeded"
    assert len(sim_received(stack)) == 2


@pytest.mark.parametrize("stack_options", [SLOW], indirect=True)
def test_cancel_ends_the_run_cancelled_and_starts_nothing_more(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha",))
    apply(
        stack,
        workflow("doomed", step("one", agent="alpha"), step("two", agent="alpha")),
    )
    wait_step(stack, "doomed", "one", "Running")
    patch_spec(stack, "doomed", cancel=True)

    wf = wait_finished(stack, "doomed")
    assert kv.phase(wf) == "Cancelled"
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "Cancelled")
    steps = steps_of(wf)
    assert {s["phase"] for s in steps.values()} == {"Cancelled"}
    assert steps["one"]["reason"] == "Cancelled"
    assert "taskId" not in steps["two"]
    # The running attempt is abandoned: its late report changes nothing, and two never starts.
    wait_until(
        lambda: sim_agent(stack, "alpha")["tasks_completed"] == 1,
        timeout=30,
        what="alpha to finish the abandoned task and report",
    )
    assert kv.phase(get_workflow(stack, "doomed")) == "Cancelled"
    assert len(sim_received(stack)) == 1


def test_bumping_retry_generation_reruns_only_the_failed_steps(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha", "beta"))
    sim_patch(stack, "beta", failure_rate=1.0)
    apply(
        stack,
        workflow("flaky", step("prepare", agent="alpha"), step("publish", agent="beta")),
    )
    failed = wait_finished(stack, "flaky")
    assert kv.phase(failed) == "Failed"
    before = steps_of(failed)

    sim_patch(stack, "beta", failure_rate=0.0)
    patch_spec(stack, "flaky", retryGeneration=1)
    wf = wait_workflow(
        stack,
        "flaky",
        lambda wf: kv.phase(wf) == "Succeeded",
        what="the retried run to succeed",
    )
    after = steps_of(wf)
    assert after["prepare"]["taskId"] == before["prepare"]["taskId"], "prepare was not re-run"
    assert after["publish"]["phase"] == "Succeeded"
    assert after["publish"]["taskId"] != before["publish"]["taskId"]
    assert wf["status"]["retryGeneration"] == 1
    counts = stack.sim_tasks()
    assert counts == {
        before["prepare"]["taskId"]: 1,
        before["publish"]["taskId"]: 1,
        after["publish"]["taskId"]: 1,
    }
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert cond["status"] == "True"
    wait_event(stack, "flaky", "RetryRequested")


def test_ttl_after_finished_deletes_the_workflow(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha", "beta"))
    apply(
        stack,
        workflow("ephemeral", step("one", capabilities=["work"]), ttlSecondsAfterFinished=2),
    )

    def gone() -> bool:
        result = stack.cp.kubectl(
            "get", "workflow", "ephemeral", "-n", stack.namespace, "-o", "json", check=False
        )
        return result.returncode != 0 and "NotFound" in result.stderr

    wait_until(gone, timeout=60, what="workflow ephemeral to be deleted")
    succeeded = wait_event(stack, "ephemeral", "WorkflowSucceeded")
    assert succeeded["involvedObject"]["kind"] == "Workflow"
    assert "deleted finished workflow" in operator_log(stack)
    assert sum(stack.sim_tasks().values()) == 1
