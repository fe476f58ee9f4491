"""Answers lost after the call took effect, on the real API server and real HTTP: a status
write the API server stored while the operator saw a timeout, and a dispatch AgentKit
scheduled while the operator saw its connection drop. Neither may lose the step, and the
only duplicate allowed is the same task id sent again (docs/reliability.md, per window)."""

from __future__ import annotations

from typing import Any

import pytest
from agent_support import apply, sim, steps_of, wait_finished, wait_for, wait_workflow, workflow

from opscore_kube.faults import ENV as WRITE_FAULTS
from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

#: Every API write of the operator is stored and then answered with a timeout (the
#: client's own retries meet the version the first try made: a 409, or time out too).
EVERY_ANSWER_LOST = StackOptions(
    agents=("alpha:work", "beta:work"), operator_env={WRITE_FAULTS: "after=1.0"}
)
#: Tasks long enough that the agent is still at work when the operator hears its
#: dispatch failed (else its reports would settle the step first, as they should).
SLOW_AGENTS = StackOptions(agents=("alpha:work", "beta:work"), task_seconds=4.0)


def chain(name: str, *names: str) -> dict[str, Any]:
    steps = [
        {
            "name": step,
            "capabilities": ["work"],
            "timeoutSeconds": 300,  # far past the test's wait: a lost dispatch would show
            **({"dependsOn": [names[i - 1]]} if i else {}),
        }
        for i, step in enumerate(names)
    ]
    return workflow(name, *steps)


def deliveries(stack: OpsCoreStack) -> dict[str, int]:
    answer: dict[str, int] = sim(stack, "GET", "/sim/tasks?include_tasks=false")["by_task_id"]
    return answer


@pytest.mark.parametrize("stack_options", [EVERY_ANSWER_LOST])
def test_a_status_write_stored_but_unanswered_still_sends_its_dispatch_once(
    stack: OpsCoreStack,
) -> None:
    apply(stack, chain("unanswered", "a", "b", "c"))
    done = wait_finished(stack, "unanswered", timeout=60)
    assert kv.phase(done) == "Succeeded"
    steps = steps_of(done)
    assert {name: entry["attempt"] for name, entry in steps.items()} == {"a": 1, "b": 1, "c": 1}
    received = deliveries(stack)
    assert {received.get(entry["taskId"]) for entry in steps.values()} == {1}
    log = (stack.log_dir / "operator.log").read_text()
    assert "took effect despite" in log


@pytest.mark.parametrize("stack_options", [SLOW_AGENTS])
def test_a_dispatch_whose_answer_is_cut_off_is_sent_again_under_the_same_task_id(
    stack: OpsCoreStack,
) -> None:
    sim(stack, "POST", "/sim/dispatch-faults", {"reset_rate": 1.0})
    apply(stack, chain("cut-off", "only"))
    waiting = wait_workflow(
        stack,
        "cut-off",
        lambda wf: steps_of(wf).get("only", {}).get("reason") == "DispatchUnconfirmed",
        what="the step waiting to be sent again (DispatchUnconfirmed)",
        timeout=30,
    )
    task_id = steps_of(waiting)["only"]["taskId"]
    assert "sending it again under the same task id" in steps_of(waiting)["only"]["message"]
    sim(stack, "POST", "/sim/dispatch-faults", {"reset_rate": 0.0})
    done = wait_finished(stack, "cut-off", timeout=40)
    assert kv.phase(done) == "Succeeded"
    only = steps_of(done)["only"]
    assert (only["attempt"], only["retries"], only["taskId"]) == (1, 0, task_id)
    wait_for(
        lambda: list(deliveries(stack)) == [task_id] or None,
        what="every delivery under the one task id",
        timeout=5,
    )
    assert deliveries(stack)[task_id] >= 2  # at least once, and the duplicate recognisable
