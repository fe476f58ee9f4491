"""Retries, backoff, the retry budget, timeouts, offline and deleted agents, refused dispatches."""

from __future__ import annotations

import itertools

from engine_harness import (
    T0,
    Answer,
    SimAgent,
    World,
    agent,
    entry,
    once,
    report,
    seconds,
    simulate,
    spec,
    step,
    succeeded_condition,
)

from opscore_logic.engine import DISPATCH_RETRY_SECONDS, Dispatch, FailedDispatch
from opscore_logic.workflow_model import StepPhase, WorkflowPhase


def fail_always(dispatch: object, world: World) -> Answer:
    return Answer(succeeded=False)


def test_a_failed_attempt_is_retried_up_to_the_limit_then_the_step_fails() -> None:
    world = simulate(spec(step("s", retries=2, backoff=1)), [SimAgent("x")], answer=fail_always)
    s = entry(world.status, "s")
    assert (s.phase, s.attempt, s.retries) == (StepPhase.FAILED, 3, 2)
    assert s.message == "TASK_FAILED: s failed (after 2 retries)"
    assert world.status.retries_used == 2
    assert world.status.phase is WorkflowPhase.FAILED


def test_a_step_without_a_retry_policy_fails_on_the_first_failure() -> None:
    world = simulate(spec(step("s")), [SimAgent("x")], answer=fail_always)
    s = entry(world.status, "s")
    assert (s.phase, s.attempt, s.retries, s.message) == (
        StepPhase.FAILED,
        1,
        0,
        "TASK_FAILED: s failed",
    )


def test_a_retry_that_succeeds_makes_the_step_succeed() -> None:
    world = simulate(
        spec(step("s", retries=3)),
        [SimAgent("x")],
        answer=lambda d, w: Answer(succeeded=d.attempt >= 2),
    )
    s = entry(world.status, "s")
    assert (s.phase, s.attempt, s.retries) == (StepPhase.SUCCEEDED, 2, 1)
    assert world.status.phase is WorkflowPhase.SUCCEEDED


def test_every_attempt_gets_its_own_task_id() -> None:
    world = simulate(spec(step("s", retries=2)), [SimAgent("x")], answer=fail_always)
    assert [x.task_id for x in world.dispatches] == ["uid-1:s:0:1", "uid-1:s:0:2", "uid-1:s:0:3"]


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    world = simulate(
        spec(step("s", retries=4, backoff=1, factor=2, max_backoff=3)),
        [SimAgent("x")],
        answer=lambda d, w: Answer(succeeded=False, delay=0.5),
    )
    sent = [d.status.steps[0].dispatched_at for d in world.decisions if d.dispatches]
    # Each attempt fails 0.5 s after it was sent; the next one waits 1, 2, 3 (cap), 3 s.
    waits = [
        (later - (earlier + seconds(0.5))).total_seconds()
        for earlier, later in itertools.pairwise(sent)
        if earlier is not None and later is not None
    ]
    assert waits == [1, 2, 3, 3]


def test_a_retry_sets_retry_at_and_asks_to_be_woken_then() -> None:
    wf = spec(step("s", agent="x", retries=1, backoff=10))
    first = once(wf, agents=[agent("x")])
    failed = agent("x", report("error", T0 + seconds(1)), free=0)
    d = once(wf, first.status, [failed], T0 + seconds(2))
    s = entry(d.status, "s")
    assert (s.phase, s.reason, s.retry_at) == (StepPhase.PENDING, "TaskFailed", T0 + seconds(12))
    assert s.message == "the agent reported 'error'; retry 1/1 in 10s"
    assert d.requeue_after == 10
    assert d.dispatches == []
    assert [e.reason for e in d.events] == ["StepRetrying"]


def test_no_dispatch_happens_before_retry_at() -> None:
    wf = spec(step("s", agent="x", retries=1, backoff=10))
    first = once(wf, agents=[agent("x")])
    failed = once(
        wf, first.status, [agent("x", report("error", T0 + seconds(1)), free=0)], T0 + seconds(2)
    )
    early = once(wf, failed.status, [agent("x")], T0 + seconds(11))
    assert early.dispatches == []
    assert early.requeue_after == 1
    on_time = once(wf, failed.status, [agent("x")], T0 + seconds(12))
    assert [(x.task_id, x.attempt) for x in on_time.dispatches] == [("uid-1:s:0:2", 2)]


def test_the_workflow_retry_budget_caps_retries_across_steps() -> None:
    wf = spec(
        step("a", retries=5, after=[]),
        step("b", retries=5, after=[]),
        retry_budget=3,
    )
    world = simulate(wf, [SimAgent("x"), SimAgent("y")], answer=fail_always)
    assert world.status.retries_used == 3
    assert sum(entry(world.status, n).retries for n in "ab") == 3
    assert any(
        (entry(world.status, n).message or "").endswith("(workflow retry budget spent)")
        for n in "ab"
    )
    assert world.status.phase is WorkflowPhase.FAILED


def test_a_zero_retry_budget_disables_retries() -> None:
    wf = spec(step("a", retries=5), retry_budget=0)
    world = simulate(wf, [SimAgent("x")], answer=fail_always)
    assert entry(world.status, "a").attempt == 1


# -- timeouts ------------------------------------------------------------------------------


def test_a_silent_attempt_times_out_and_fails_the_workflow_as_timed_out() -> None:
    world = simulate(
        spec(step("s", timeout_seconds=30)),
        [SimAgent("x")],
        answer=lambda d, w: Answer(silent=True),
    )
    s = entry(world.status, "s")
    assert (s.phase, s.reason) == (StepPhase.FAILED, "TimedOut")
    assert s.message == "no result from agent x within 30s"
    assert s.finished_at == T0 + seconds(30)
    assert succeeded_condition(world.status) == ("False", "TimedOut")


def test_a_running_step_with_a_timeout_asks_to_be_woken_at_the_timeout() -> None:
    wf = spec(step("s", agent="x", timeout_seconds=30))
    first = once(wf, agents=[agent("x")])
    assert first.requeue_after == 30
    later = once(wf, first.status, [agent("x", free=0)], T0 + seconds(20))
    assert later.requeue_after == 10
    assert entry(later.status, "s").phase is StepPhase.RUNNING


def test_a_timed_out_attempt_is_retried_on_another_agent() -> None:
    wf = spec(step("s", caps=["w"], timeout_seconds=10, retries=1, backoff=0))
    world = simulate(
        wf,
        [SimAgent("a", frozenset({"w"})), SimAgent("b", frozenset({"w"}))],
        answer=lambda d, w: Answer(silent=d.agent == "a"),
    )
    assert [(x.agent, x.attempt) for x in world.dispatches] == [("a", 1), ("b", 2)]
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    assert [r.result for d in world.decisions for r in d.releases] == ["failed", "succeeded"]


# -- agents that go away -------------------------------------------------------------------


def test_an_agent_going_offline_fails_the_attempt_as_agent_offline() -> None:
    wf = spec(step("s", agent="x"))
    first = once(wf, agents=[agent("x")])
    d = once(wf, first.status, [agent("x", free=0, ready=False, offline=True)], T0 + seconds(5))
    s = entry(d.status, "s")
    assert (s.phase, s.reason) == (StepPhase.FAILED, "AgentOffline")
    assert "went offline" in (s.message or "")
    assert [r.result for r in d.releases] == ["failed"]


def test_an_offline_agent_that_reported_the_result_still_counts() -> None:
    wf = spec(step("s", agent="x"))
    first = once(wf, agents=[agent("x")])
    gone_quiet = agent("x", report("idle", T0 + seconds(1)), free=0, offline=True)
    d = once(wf, first.status, [gone_quiet], T0 + seconds(600))
    assert entry(d.status, "s").phase is StepPhase.SUCCEEDED


def test_an_agent_offline_retry_spends_a_retry() -> None:
    wf = spec(step("s", caps=[], retries=1, backoff=0))
    first = once(wf, agents=[agent("x")])
    d = once(
        wf,
        first.status,
        [agent("x", free=0, ready=False, offline=True), agent("y")],
        T0 + seconds(5),
    )
    s = entry(d.status, "s")
    assert (s.phase, s.agent, s.attempt, s.retries) == (StepPhase.RUNNING, "y", 2, 1)


def test_a_deleted_agent_requeues_the_step_without_spending_a_retry() -> None:
    wf = spec(step("s", caps=[]))
    first = once(wf, agents=[agent("x")])
    d = once(wf, first.status, [agent("y")], T0 + seconds(5))
    assert [(r.agent, r.result) for r in d.releases] == [("x", "abandoned")]
    s = entry(d.status, "s")
    assert (s.phase, s.agent, s.attempt, s.retries) == (StepPhase.RUNNING, "y", 2, 0)
    assert [e.reason for e in d.events][:1] == ["StepRequeued"]


def test_a_deleted_agent_with_no_replacement_leaves_the_step_waiting() -> None:
    wf = spec(step("s", agent="x"))
    first = once(wf, agents=[agent("x")])
    d = once(wf, first.status, [], T0 + seconds(5))
    s = entry(d.status, "s")
    assert (s.phase, s.reason) == (StepPhase.QUEUED, "NoAgentAvailable")
    assert d.status.phase is WorkflowPhase.RUNNING


def test_a_requeue_from_a_deleted_agent_is_announced_naming_the_agent() -> None:
    wf = spec(step("s", agent="x"))
    first = once(wf, agents=[agent("x")])
    d = once(wf, first.status, [], T0 + seconds(5))
    requeued = next(e for e in d.events if e.reason == "StepRequeued")
    assert requeued.message == "s: agent 'x' was deleted; the step is requeued"


# -- dispatches AgentKit refused -----------------------------------------------------------


def test_a_refused_dispatch_goes_back_to_pending_without_spending_a_retry() -> None:
    wf = spec(step("s", agent="x", retries=0))
    first = once(wf, agents=[agent("x")])
    task = entry(first.status, "s").task_id
    assert task is not None
    d = once(
        wf,
        first.status,
        [agent("x", free=0)],
        T0 + seconds(1),
        failed_dispatches={task: FailedDispatch("404 agent not found")},
    )
    s = entry(d.status, "s")
    assert (s.phase, s.reason, s.retries) == (StepPhase.PENDING, "DispatchFailed", 0)
    assert s.message == f"AgentKit did not take task {task}: 404 agent not found"
    assert s.retry_at == T0 + seconds(1 + DISPATCH_RETRY_SECONDS)
    assert [(r.task_id, r.result) for r in d.releases] == [(task, "abandoned")]
    assert d.requeue_after == DISPATCH_RETRY_SECONDS


def test_a_refused_dispatch_is_sent_again_with_a_new_task_id() -> None:
    refusals = {"uid-1:s:0:1"}
    world = simulate(
        spec(step("s", retries=0)),
        [SimAgent("x")],
        answer=lambda d, w: Answer(refused="503" if d.task_id in refusals else None),
    )
    assert [x.task_id for x in world.dispatches] == ["uid-1:s:0:1", "uid-1:s:0:2"]
    s = entry(world.status, "s")
    assert (s.phase, s.retries) == (StepPhase.SUCCEEDED, 0)
    assert world.status.retries_used == 0


def test_a_dispatch_agentkit_may_have_taken_is_sent_again_under_the_same_task_id() -> None:
    sent: list[str] = []

    def first_answer_lost(dispatch: Dispatch, world: World) -> Answer:
        sent.append(dispatch.task_id)
        return Answer(answer_lost=len(sent) == 1)

    world = simulate(spec(step("s", retries=0)), [SimAgent("x")], answer=first_answer_lost)
    assert [x.task_id for x in world.dispatches] == ["uid-1:s:0:1", "uid-1:s:0:1"]
    s = entry(world.status, "s")
    assert (s.phase, s.attempt, s.retries) == (StepPhase.SUCCEEDED, 1, 0)
    assert world.status.retries_used == 0


def test_an_unconfirmed_dispatch_waits_in_pending_and_says_it_will_be_resent() -> None:
    wf = spec(step("s", agent="x", retries=0))
    first = once(wf, agents=[agent("x")])
    task = entry(first.status, "s").task_id
    assert task is not None
    lost = FailedDispatch("ReadTimeout: timed out", maybe_delivered=True)
    d = once(
        wf, first.status, [agent("x", free=0)], T0 + seconds(1), failed_dispatches={task: lost}
    )
    s = entry(d.status, "s")
    assert (s.phase, s.reason, s.attempt, s.retries) == (
        StepPhase.PENDING,
        "DispatchUnconfirmed",
        0,
        0,
    )
    assert s.message == (
        f"AgentKit may have taken task {task} (its answer was lost: ReadTimeout: timed out);"
        " sending it again under the same task id"
    )
    assert [(e.reason, e.type) for e in d.events] == [("DispatchUnconfirmed", "Warning")]


def test_the_same_task_id_goes_back_to_the_same_agent_when_it_is_free() -> None:
    wf = spec(step("s", retries=0))
    first = once(wf, agents=[agent("x"), agent("y")])
    s = entry(first.status, "s")
    assert (s.agent, s.task_id) == ("x", "uid-1:s:0:1")
    lost = {"uid-1:s:0:1": FailedDispatch("ReadError", maybe_delivered=True)}
    # y was never dispatched to, so the usual order would give it the step
    agents = [agent("x", last=T0), agent("y")]
    requeued = once(wf, first.status, agents, T0, failed_dispatches=lost)
    later = T0 + seconds(DISPATCH_RETRY_SECONDS)
    assert [x.agent for x in once(spec(step("t")), agents=agents).dispatches] == ["y"]
    again = once(wf, requeued.status, agents, later)
    assert [(x.agent, x.task_id) for x in again.dispatches] == [("x", "uid-1:s:0:1")]


def test_the_same_task_id_goes_to_another_agent_when_its_first_is_busy() -> None:
    wf = spec(step("s", retries=0))
    first = once(wf, agents=[agent("x"), agent("y")])
    lost = {"uid-1:s:0:1": FailedDispatch("ReadError", maybe_delivered=True)}
    requeued = once(wf, first.status, [agent("x"), agent("y")], T0, failed_dispatches=lost)
    later = T0 + seconds(DISPATCH_RETRY_SECONDS)
    again = once(wf, requeued.status, [agent("x", free=0), agent("y")], later)
    assert [(x.agent, x.task_id) for x in again.dispatches] == [("y", "uid-1:s:0:1")]


def test_failed_dispatches_for_other_tasks_change_nothing() -> None:
    wf = spec(step("s", agent="x"))
    first = once(wf, agents=[agent("x")])
    d = once(
        wf,
        first.status,
        [agent("x", free=0)],
        T0,
        failed_dispatches={"other:task": FailedDispatch("boom")},
    )
    assert d.status == first.status
    assert d.releases == []
    assert d.dispatches == []
