"""Control verbs and whole-run rules: suspend, cancel, retryGeneration, deadline, TTL,
invalid specs, and the `Succeeded` condition that `kubectl wait` reads."""

from __future__ import annotations

from collections.abc import Callable

from engine_harness import (
    REF,
    T0,
    Answer,
    SimAgent,
    World,
    agent,
    done,
    entry,
    once,
    phases,
    report,
    seconds,
    simulate,
    spec,
    step,
    succeeded_condition,
)

from opscore_logic.conditions import get_condition
from opscore_logic.engine import Decision, Dispatch
from opscore_logic.templates import resolve
from opscore_logic.workflow_model import (
    StepPhase,
    TemplateParameter,
    TemplateRef,
    WorkflowPhase,
    WorkflowSpec,
    WorkflowStatus,
    WorkflowTemplateSpec,
)

TWO = spec(step("a", agent="x"), step("b", agent="x"))


def running_a() -> Decision:
    return once(TWO, agents=[agent("x")])


def with_(wf: WorkflowSpec, **changes: object) -> WorkflowSpec:
    return wf.model_copy(update=changes)


# -- suspend -------------------------------------------------------------------------------


def test_a_suspended_workflow_dispatches_nothing_and_shows_suspended() -> None:
    d = once(with_(TWO, suspend=True), agents=[agent("x")])
    assert d.dispatches == []
    assert d.status.phase is WorkflowPhase.SUSPENDED
    a = entry(d.status, "a")
    assert (a.phase, a.reason, a.message) == (StepPhase.PENDING, "Suspended", "workflow suspended")
    assert succeeded_condition(d.status) == ("Unknown", "Suspended")


def test_a_running_step_still_finishes_while_suspended_but_nothing_new_starts() -> None:
    first = running_a()
    task = entry(first.status, "a").task_id
    assert task is not None
    x = agent("x", done(task, T0 + seconds(1)), free=0)
    d = once(with_(TWO, suspend=True), first.status, [x], T0 + seconds(2))
    assert phases(d.status) == {"a": StepPhase.SUCCEEDED, "b": StepPhase.PENDING}
    assert d.dispatches == []
    assert d.status.phase is WorkflowPhase.SUSPENDED


def test_resuming_dispatches_what_waited() -> None:
    suspended = once(with_(TWO, suspend=True), agents=[agent("x")])
    d = once(TWO, suspended.status, [agent("x")], T0 + seconds(60))
    assert [x.step for x in d.dispatches] == ["a"]
    assert d.status.phase is WorkflowPhase.RUNNING
    assert succeeded_condition(d.status) == ("Unknown", "Running")


def test_suspend_does_not_stop_the_deadline() -> None:
    wf = with_(TWO, suspend=True, deadline_seconds=60)
    first = once(wf, agents=[agent("x")])
    d = once(wf, first.status, [agent("x")], T0 + seconds(60))
    assert d.status.phase is WorkflowPhase.FAILED


# -- cancel --------------------------------------------------------------------------------


def test_cancel_stops_the_run_with_condition_false_cancelled() -> None:
    first = running_a()
    d = once(with_(TWO, cancel=True), first.status, [agent("x", free=0)], T0 + seconds(5))
    assert d.status.phase is WorkflowPhase.CANCELLED
    assert succeeded_condition(d.status) == ("False", "Cancelled")
    assert d.status.completion_time == T0 + seconds(5)
    assert d.dispatches == []


def test_cancel_releases_running_attempts_as_abandoned() -> None:
    first = running_a()
    d = once(with_(TWO, cancel=True), first.status, [agent("x", free=0)], T0 + seconds(5))
    assert [(r.agent, r.task_id, r.result) for r in d.releases] == [
        ("x", "uid-1:a:0:1", "abandoned")
    ]


def test_cancel_marks_unfinished_steps_cancelled_with_their_finish_time() -> None:
    first = running_a()
    d = once(with_(TWO, cancel=True), first.status, [agent("x", free=0)], T0 + seconds(5))
    for name in "ab":
        s = entry(d.status, name)
        assert (s.phase, s.reason, s.finished_at) == (
            StepPhase.CANCELLED,
            "Cancelled",
            T0 + seconds(5),
        )
    assert d.status.progress == "2/2"


def test_cancel_keeps_finished_steps_as_they_were() -> None:
    world = World(TWO, [SimAgent("x")], check=True)
    world.run_until(lambda status: entry(status, "b").phase is StepPhase.RUNNING)
    world.spec = with_(TWO, cancel=True)
    world.run_pass()
    assert phases(world.status) == {"a": StepPhase.SUCCEEDED, "b": StepPhase.CANCELLED}


def test_cancel_before_the_first_pass_never_dispatches() -> None:
    d = once(with_(TWO, cancel=True), agents=[agent("x")])
    assert d.dispatches == []
    assert d.status.phase is WorkflowPhase.CANCELLED


def test_cancelling_a_finished_workflow_changes_nothing() -> None:
    world = simulate(TWO, [SimAgent("x")])
    d = once(with_(TWO, cancel=True), world.status, [agent("x")], world.now + seconds(1))
    assert d.status == world.status
    assert d.events == []
    assert d.releases == []


# -- retryGeneration -----------------------------------------------------------------------


def failing_b(dispatch: Dispatch, world: World) -> Answer:
    return Answer(succeeded=dispatch.step != "b")


THREE = spec(step("a"), step("b"), step("c"))


def failed_run() -> World:
    world = simulate(THREE, [SimAgent("x")], answer=failing_b)
    assert world.status.phase is WorkflowPhase.FAILED
    return world


def retry(
    world: World, generation: int, answer: Callable[[Dispatch, World], Answer] | None = None
) -> World:
    """Ask for retry `generation` a minute later and run until the run finishes again."""
    world.spec = with_(world.spec, retry_generation=generation)
    if answer is not None:
        world.answer = answer
    world.now += seconds(60)
    world.run()
    return world


def test_retry_generation_retries_the_failed_steps_and_their_dependents() -> None:
    world = retry(failed_run(), 1, lambda d, w: Answer())
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    assert [x.step for x in world.dispatches] == ["a", "b", "b", "c"]
    assert succeeded_condition(world.status) == ("True", "Succeeded")
    assert world.status.retry_generation == 1


def test_a_retried_step_gets_a_fresh_task_id_and_attempt_count() -> None:
    world = retry(failed_run(), 1, lambda d, w: Answer())
    b = entry(world.status, "b")
    assert (b.attempt, b.task_id) == (1, "uid-1:b:1:1")


def test_retry_generation_announces_the_retry() -> None:
    world = failed_run()
    d = once(with_(THREE, retry_generation=1), world.status, [agent("x")], world.now)
    assert [e.reason for e in d.events][:2] == ["RetryRequested", "StepDispatched"]
    assert entry(d.status, "b").phase is StepPhase.RUNNING
    assert entry(d.status, "c").phase is StepPhase.PENDING
    assert d.status.completion_time is None
    assert succeeded_condition(d.status) == ("Unknown", "Running")


def test_a_retried_run_gets_its_step_retries_and_budget_back() -> None:
    wf = spec(step("s", retries=1, backoff=0), retry_budget=1)
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(succeeded=False))
    assert world.status.retries_used == 1
    retry(world, 1)
    assert world.status.phase is WorkflowPhase.FAILED
    assert [x.task_id for x in world.dispatches] == [
        "uid-1:s:0:1",
        "uid-1:s:0:2",
        "uid-1:s:1:1",
        "uid-1:s:1:2",
    ]


def test_task_ids_are_never_reused_even_if_retry_generation_goes_down_and_up() -> None:
    world = retry(failed_run(), 1)  # fails again (b always fails)
    retry(world, 0)  # lowering it is not a retry request
    assert world.status.phase is WorkflowPhase.FAILED
    retry(world, 1)  # nor is raising it back to a generation already run
    retry(world, 2)
    ids = [x.task_id for x in world.dispatches]
    assert len(ids) == len(set(ids))
    assert ids[-1] == "uid-1:b:2:1"


def test_retry_generation_on_a_succeeded_run_changes_nothing() -> None:
    world = simulate(TWO, [SimAgent("x")])
    d = once(with_(TWO, retry_generation=1), world.status, [agent("x")], world.now)
    assert d.dispatches == []
    assert d.status.phase is WorkflowPhase.SUCCEEDED


def test_a_retry_while_running_retries_the_steps_failed_so_far() -> None:
    wf = spec(step("bad", after=[]), step("slow", after=[]))
    world = World(
        wf,
        [SimAgent("x"), SimAgent("y")],
        answer=lambda d, w: Answer(
            succeeded=d.task_id != "uid-1:bad:0:1", delay=1 if d.step == "bad" else 10
        ),
        check=True,
    )
    world.run_until(lambda status: entry(status, "bad").phase is StepPhase.FAILED)
    assert phases(world.status) == {"bad": StepPhase.FAILED, "slow": StepPhase.RUNNING}
    world.spec = with_(wf, retry_generation=1)
    world.answer = lambda d, w: Answer(delay=60)
    world.run()
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    assert [x.task_id for x in world.dispatches] == [
        "uid-1:bad:0:1",
        "uid-1:slow:0:1",
        "uid-1:bad:1:1",
    ]


def test_a_retry_requested_before_anything_failed_is_used_up() -> None:
    world = World(THREE, [SimAgent("x")], answer=failing_b, check=True)
    world.run_pass()
    world.spec = with_(THREE, retry_generation=1)
    world.run()
    assert world.status.phase is WorkflowPhase.FAILED
    assert world.status.retry_generation == 1
    assert [x.task_id for x in world.dispatches] == ["uid-1:a:0:1", "uid-1:b:1:1"]


def test_a_workflow_created_with_a_retry_generation_does_not_retry_by_itself() -> None:
    wf = with_(THREE, retry_generation=3)
    world = simulate(wf, [SimAgent("x")], answer=failing_b)
    assert world.status.phase is WorkflowPhase.FAILED
    assert [x.task_id for x in world.dispatches] == ["uid-1:a:3:1", "uid-1:b:3:1"]


def test_a_retry_after_the_deadline_gets_a_fresh_deadline() -> None:
    wf = spec(step("s"), deadline_seconds=30)
    world = simulate(wf, [SimAgent("x")], answer=lambda d, w: Answer(silent=True))
    assert succeeded_condition(world.status) == ("False", "TimedOut")
    retry(world, 1, lambda d, w: Answer(delay=5))
    assert world.status.phase is WorkflowPhase.SUCCEEDED


# -- deadline ------------------------------------------------------------------------------


def test_the_deadline_fails_the_run_as_timed_out() -> None:
    wf = with_(TWO, deadline_seconds=60)
    first = once(wf, agents=[agent("x")])
    d = once(wf, first.status, [agent("x", free=0)], T0 + seconds(60))
    assert d.status.phase is WorkflowPhase.FAILED
    assert succeeded_condition(d.status) == ("False", "TimedOut")
    assert d.status.message == "workflow deadline of 60s passed"
    assert [(r.task_id, r.result) for r in d.releases] == [("uid-1:a:0:1", "abandoned")]
    a, b = entry(d.status, "a"), entry(d.status, "b")
    assert (a.phase, a.reason, a.finished_at) == (
        StepPhase.FAILED,
        "DeadlineExceeded",
        T0 + seconds(60),
    )
    assert (b.phase, b.reason) == (StepPhase.CANCELLED, "DeadlineExceeded")


def test_a_running_workflow_asks_to_be_woken_at_its_deadline() -> None:
    wf = with_(TWO, deadline_seconds=60)
    first = once(wf, agents=[agent("x")])
    assert first.requeue_after == 60
    later = once(wf, first.status, [agent("x", free=0)], T0 + seconds(45))
    assert later.requeue_after == 15


def test_the_deadline_counts_from_the_start_of_the_run() -> None:
    wf = with_(TWO, deadline_seconds=60)
    first = once(wf, agents=[agent("x")], now=T0 + seconds(100))
    assert first.status.start_time == T0 + seconds(100)
    later = once(wf, first.status, [agent("x", free=0)], T0 + seconds(159))
    assert later.status.phase is WorkflowPhase.RUNNING


# -- ttlSecondsAfterFinished ---------------------------------------------------------------


def test_a_finished_workflow_is_deleted_after_its_ttl_and_requeued_before() -> None:
    wf = with_(TWO, ttl_seconds_after_finished=120)
    world = simulate(wf, [SimAgent("x")])
    finished = world.status.completion_time
    assert finished is not None
    last = world.decisions[-1]
    assert not last.delete
    assert last.requeue_after == 120
    early = once(wf, world.status, [agent("x")], finished + seconds(100))
    assert (early.delete, early.requeue_after) == (False, 20)
    due = once(wf, world.status, [agent("x")], finished + seconds(120))
    assert due.delete


def test_a_zero_ttl_deletes_in_the_pass_that_finishes_the_run() -> None:
    world = simulate(with_(TWO, ttl_seconds_after_finished=0), [SimAgent("x")])
    assert world.decisions[-1].delete


def test_without_a_ttl_a_finished_workflow_stays() -> None:
    world = simulate(TWO, [SimAgent("x")])
    d = once(TWO, world.status, [agent("x")], world.now + seconds(10**6))
    assert (d.delete, d.requeue_after) == (False, None)


def test_a_failed_or_cancelled_run_is_deleted_after_its_ttl_too() -> None:
    wf = with_(TWO, ttl_seconds_after_finished=0, cancel=True)
    assert once(wf, agents=[agent("x")]).delete


# -- invalid specs -------------------------------------------------------------------------


def invalid(d: Decision) -> str:
    assert d.status.phase is WorkflowPhase.FAILED
    assert succeeded_condition(d.status) == ("False", "InvalidSpec")
    assert d.dispatches == []
    assert d.status.message is not None
    return d.status.message


def test_a_dependency_cycle_is_an_invalid_spec_naming_the_cycle() -> None:
    wf = spec(step("a", after=["c"]), step("b", after=["a"]), step("c", after=["b"]))
    assert invalid(once(wf, agents=[agent("x")])) == (
        "invalid spec: dependsOn has a cycle: a -> c -> b -> a"
    )


def test_an_unknown_dependency_is_an_invalid_spec_naming_it() -> None:
    wf = spec(step("a", after=["ghost"]))
    assert "step 'a' depends on unknown step 'ghost'" in invalid(once(wf))


def test_a_duplicate_step_name_is_an_invalid_spec() -> None:
    wf = spec(step("a"), step("a"))
    assert "step name 'a' is used more than once" in invalid(once(wf))


def test_a_reference_to_an_unknown_input_is_an_invalid_spec() -> None:
    wf = spec(step("a", parameters={"q": "{{ inputs.query }}"}))
    resolved = resolve(wf, None)
    d = once(wf, steps=resolved.steps, inputs=resolved.inputs, resolve_error=resolved.error)
    assert "unknown input(s): inputs.query" in invalid(d)


def test_a_reference_to_an_unknown_step_is_an_invalid_spec() -> None:
    wf = spec(step("a", parameters={"q": "{{ steps.nope.output.x }}"}))
    resolved = resolve(wf, None)
    d = once(wf, steps=resolved.steps, resolve_error=resolved.error)
    assert "unknown step(s): steps.nope.output.x" in invalid(d)


def test_a_missing_required_template_parameter_is_an_invalid_spec() -> None:
    template = WorkflowTemplateSpec(
        parameters=[TemplateParameter(name="subject", required=True)],
        steps=[step("research", parameters={"s": "{{ inputs.subject }}"})],
    )
    wf = WorkflowSpec(template_ref=TemplateRef(name="weekly"))
    resolved = resolve(wf, template)
    d = once(wf, steps=resolved.steps, resolve_error=resolved.error)
    assert invalid(d) == (
        "invalid spec: missing required parameter(s) of template 'weekly': subject"
    )


def test_a_missing_template_is_an_invalid_spec() -> None:
    wf = WorkflowSpec(template_ref=TemplateRef(name="gone"))
    resolved = resolve(wf, None)
    d = once(wf, steps=resolved.steps, resolve_error=resolved.error)
    assert invalid(d) == "invalid spec: WorkflowTemplate 'gone' not found"


def test_an_unresolvable_condition_at_run_time_fails_the_step_as_invalid_spec() -> None:
    wf = spec(step("a", when="steps.a.output.x =="))
    d = once(wf, agents=[agent("x")])
    a = entry(d.status, "a")
    assert (a.phase, a.reason) == (StepPhase.FAILED, "InvalidSpec")
    assert succeeded_condition(d.status) == ("False", "InvalidSpec")


def test_an_invalid_spec_is_announced_once() -> None:
    wf = spec(step("a", after=["ghost"]))
    first = once(wf)
    again = once(wf, first.status, now=T0 + seconds(1))
    assert [e.reason for e in first.events] == ["InvalidSpec", "WorkflowFailed"]
    assert again.events == []
    assert again.status == first.status


def test_losing_the_template_mid_run_releases_the_running_attempts() -> None:
    first = running_a()
    d = once(
        TWO,
        first.status,
        [agent("x", free=0)],
        T0 + seconds(5),
        steps=None,
        resolve_error="WorkflowTemplate 'weekly' not found",
    )
    invalid(d)
    assert [(r.task_id, r.result) for r in d.releases] == [("uid-1:a:0:1", "abandoned")]
    assert phases(d.status) == {"a": StepPhase.CANCELLED, "b": StepPhase.CANCELLED}
    assert entry(d.status, "a").finished_at == T0 + seconds(5)


def test_a_step_that_disappears_from_the_template_mid_run_is_released() -> None:
    first = running_a()
    d = once(TWO, first.status, [agent("x", free=0)], T0 + seconds(5), steps=[step("b", agent="x")])
    assert [(r.task_id, r.result) for r in d.releases] == [("uid-1:a:0:1", "abandoned")]
    assert [e.name for e in d.status.steps] == ["b"]


# -- conditions, progress, generation ------------------------------------------------------


def test_succeeded_is_unknown_while_running_and_true_at_the_end() -> None:
    world = simulate(TWO, [SimAgent("x")])
    seen = [succeeded_condition(d.status) for d in world.decisions]
    assert set(seen[:-1]) == {("Unknown", "Running")}
    assert seen[-1] == ("True", "Succeeded")
    cond = get_condition(world.status.conditions, "Succeeded")
    assert cond is not None
    assert cond.message == "all steps finished"


def test_last_transition_time_moves_only_when_the_condition_status_changes() -> None:
    world = simulate(TWO, [SimAgent("x")], answer=lambda d, w: Answer(delay=10))
    times = [d.status.conditions[0].last_transition_time for d in world.decisions]
    assert set(times[:-1]) == {T0}
    assert times[-1] == world.status.completion_time == T0 + seconds(20)


def test_observed_generation_is_the_generation_reconciled() -> None:
    ref = REF.__class__(namespace="ns", name="wf", uid="uid-1", generation=7)
    d = once(TWO, agents=[agent("x")], ref=ref)
    assert d.status.observed_generation == 7
    assert d.status.conditions[0].observed_generation == 7
    finished = simulate(TWO, [SimAgent("x")]).status
    later = once(TWO, finished, [agent("x")], T0 + seconds(100), ref=ref)
    assert later.status.observed_generation == 7


def test_progress_counts_finished_steps_of_all_steps() -> None:
    world = simulate(THREE, [SimAgent("x")])
    progress = [d.status.progress for d in world.decisions]
    assert progress[0] == "0/3"
    assert progress[-1] == "3/3"
    assert "1/3" in progress
    assert "2/3" in progress


def test_the_workflow_message_says_what_runs_where() -> None:
    assert running_a().status.message == "running a on x"


def test_phase_changes_are_announced_as_events() -> None:
    world = simulate(TWO, [SimAgent("x")])
    reasons = [e.reason for d in world.decisions for e in d.events]
    assert reasons.count("WorkflowRunning") == 1
    assert reasons[-1] == "WorkflowSucceeded"


def test_a_workflow_with_an_unrelated_error_report_keeps_running() -> None:
    # An error reported before the dispatch says nothing about this task.
    wf = spec(step("a", agent="x"))
    first = once(wf, agents=[agent("x", report("error", T0 - seconds(5)))])
    assert first.status.phase is WorkflowPhase.RUNNING
    again = once(
        wf, first.status, [agent("x", report("error", T0 - seconds(5)), free=0)], T0 + seconds(1)
    )
    assert again.status == first.status


def test_an_empty_status_is_where_every_run_begins() -> None:
    d = once(TWO, WorkflowStatus(), [agent("x")])
    assert d.status.start_time == T0
    assert [e.name for e in d.status.steps] == ["a", "b"]
