"""Feature 9 of the engine: restart safety. The operator is SIGKILLed mid-run and started
again; it continues every workflow from status alone, losing no step and dispatching no
attempt twice (the simulator's per-task counts are the proof). A kill that falls between a
dispatch's status write and its POST costs that step one attempt timeout and a new task
id, never a duplicate (docs/reliability.md, per window)."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

import pytest
from engine_support import (
    FINISHED,
    agents_ready,
    apply,
    options_from,
    overlaps,
    step,
    steps_of,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

WORKFLOWS = [f"run-{i}" for i in range(5)]
STEPS = ("extract", "transform", "load")


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(
        request,
        StackOptions(
            agents=("alpha:work", "beta:work", "gamma:work"),
            task_seconds=1.0,
        ),
    )


def _step(name: str) -> dict[str, Any]:
    """A kill between a dispatch's status write and its POST (the window in
    docs/reliability.md) leaves that attempt to its timeout, and the step fails `TimedOut`
    unless it may retry: as the docs advise, every step sets both, the timeout well above
    the simulator's 1 s task, so only an attempt that never left can time out."""
    return step(
        name,
        capabilities=["work"],
        timeoutSeconds=10,
        retries={"limit": 1, "backoffSeconds": 0},
    )


def _all(stack: OpsCoreStack) -> dict[str, dict[str, Any]]:
    return {wf["metadata"]["name"]: wf for wf in kv.items(stack.cp, "workflows", stack.namespace)}


def _step_phases(stack: OpsCoreStack) -> list[str]:
    return [s["phase"] for wf in _all(stack).values() for s in steps_of(wf).values()]


def test_sigkill_mid_run_loses_no_step_and_dispatches_no_attempt_twice(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("alpha", "beta", "gamma"))
    apply(
        stack,
        *(workflow(name, *(_step(s) for s in STEPS)) for name in WORKFLOWS),
    )

    def mid_run() -> bool:
        phases = _step_phases(stack)
        return phases.count("Succeeded") >= 3 and "Running" in phases

    wait_until(mid_run, timeout=60, interval=0.1, what="some steps done and some running")
    stack.restart_operator(kill=True)

    def all_finished() -> bool:
        found = _all(stack)
        return len(found) == len(WORKFLOWS) and all(
            kv.phase(wf) in FINISHED for wf in found.values()
        )

    wait_until(all_finished, timeout=120, interval=0.2, what="every workflow to finish")
    workflows = _all(stack)
    assert {name: kv.phase(wf) for name, wf in workflows.items()} == dict.fromkeys(
        WORKFLOWS, "Succeeded"
    )

    entries = [s for wf in workflows.values() for s in steps_of(wf).values()]
    assert len(entries) == len(WORKFLOWS) * len(STEPS)
    counts = stack.sim_tasks()
    for s in entries:
        # A step runs again only when the kill fell into the window: its earlier attempt's
        # task id never reached an agent (at most once), and the retry has a new id.
        earlier = [_attempt_id(s["taskId"], n) for n in range(1, s["attempt"])]
        assert [counts.get(t) for t in earlier] == [None] * len(earlier), s
    assert {s["taskId"]: counts.get(s["taskId"]) for s in entries} == {
        s["taskId"]: 1 for s in entries
    }, "every task reached its agent exactly once"
    assert sum(counts.values()) == len(entries), "no task the statuses do not know of"

    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_agent[entry["agent"]].append(entry)
    for agent, runs in by_agent.items():
        for a, b in combinations(runs, 2):
            assert not overlaps(a, b), f"agent {agent} had two tasks at once: {a} {b}"


def _attempt_id(task_id: str, attempt: int) -> str:
    """The task id of `attempt` of the same step (`<uid>:<step>:<generation>:<attempt>`)."""
    return f"{task_id.rsplit(':', 1)[0]}:{attempt}"


CRASH_BEFORE_SECOND_POST = StackOptions(
    agents=("alpha:work",),
    task_seconds=0.2,
    operator_env={"OPSCORE_FAULTPOINTS": "operator.dispatch.before_post=crash@2"},
)


@pytest.mark.parametrize("stack_options", [CRASH_BEFORE_SECOND_POST], indirect=True)
def test_a_crash_between_the_status_write_and_the_post_costs_one_timeout_never_a_duplicate(
    stack: OpsCoreStack,
) -> None:
    """The window itself, hit on purpose (the fault point, not a lucky kill): the second
    dispatch's `Running` + task id is stored and the process dies before the POST. The new
    operator does not re-send that id; the attempt times out and runs under a new one."""
    agents_ready(stack, ("alpha",))
    apply(stack, workflow("window", _step("first"), _step("second")))
    operator = stack.operator
    assert operator is not None
    wait_until(lambda: operator.returncode is not None, timeout=60, interval=0.1, what="the crash")
    stack.options.operator_env = {}
    stack.start_operator()

    def finished() -> bool:
        found = _all(stack).get("window")
        return found is not None and kv.phase(found) in FINISHED

    wait_until(finished, timeout=60, interval=0.2, what="the run to finish")
    run = _all(stack)["window"]
    assert kv.phase(run) == "Succeeded", run.get("status")
    second = steps_of(run)["second"]
    assert second["attempt"] == 2, second
    counts = stack.sim_tasks()
    assert counts.get(_attempt_id(second["taskId"], 1)) is None, "the lost attempt never left"
    assert counts.get(second["taskId"]) == 1
    assert sum(counts.values()) == 2, counts
