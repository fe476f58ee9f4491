"""The spans a pass plans: one per ended attempt, the run's once it finishes, all in the
run's one trace with ids derived from its uid (so any process plans the same ones)."""

from __future__ import annotations

from engine_harness import REF, T0, agent, done, entry, once, report, seconds, spec, step

from opscore_logic.agent_model import AgentReport
from opscore_logic.run_trace import SpanPlan, dispatch_traceparent, planned_spans
from opscore_logic.trace_ids import attempt_span_id, run_span_id, trace_id_for_run
from opscore_logic.workflow_model import WorkflowStatus

CHAIN = spec(step("a", agent="x"), step("b", agent="x"))


def _pass(
    status: WorkflowStatus, *reports: AgentReport, at: float
) -> tuple[WorkflowStatus, list[SpanPlan]]:
    x = agent("x", *reports)
    decision = once(CHAIN, status, [x], T0 + seconds(at))
    plans = planned_spans(ref=REF, before=status, decision=decision, now=T0 + seconds(at))
    return decision.status, plans


def test_an_attempt_that_ends_is_one_invoke_agent_span_from_dispatch_to_report() -> None:
    status, plans = _pass(WorkflowStatus(), at=0)
    assert plans == []  # a dispatch alone completes no span
    task = entry(status, "a").task_id
    assert task is not None
    _, plans = _pass(status, done(task, T0 + seconds(3)), at=4)
    (attempt,) = plans
    assert attempt.name == "invoke_agent x"
    assert (attempt.start, attempt.end) == (T0, T0 + seconds(3))
    assert attempt.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attempt.attributes["opscore.task_id"] == task
    assert attempt.attributes["opscore.outcome"] == "succeeded"
    assert attempt.attributes["opscore.reason"] == "TaskSucceeded"
    assert attempt.attributes["opscore.attempt"] == 1
    assert attempt.error is None


def test_every_span_of_a_run_is_in_the_trace_of_its_uid_under_its_root() -> None:
    status, _ = _pass(WorkflowStatus(), at=0)
    status, first = _pass(status, done(entry(status, "a").task_id or "", T0 + seconds(1)), at=1)
    b_task = entry(status, "b").task_id or ""
    _, last = _pass(status, done(b_task, T0 + seconds(2)), at=2)
    spans = first + last
    assert {plan.trace_id for plan in spans} == {trace_id_for_run(REF.uid)}
    root = next(plan for plan in spans if plan.parent_span_id is None)
    assert root.name == "invoke_workflow wf"
    assert root.span_id == run_span_id(REF.uid)
    attempts = [plan for plan in spans if plan is not root]
    assert {plan.parent_span_id for plan in attempts} == {root.span_id}
    assert [plan.span_id for plan in attempts] == [
        attempt_span_id(entry(status, "a").task_id or ""),
        attempt_span_id(b_task),
    ]


def test_a_failed_attempt_is_an_error_span_with_its_reason() -> None:
    status, _ = _pass(WorkflowStatus(), at=0)
    failing = report("error", T0 + seconds(1), opscore_task_id=entry(status, "a").task_id)
    _, plans = _pass(status, failing, at=1)
    attempt = next(plan for plan in plans if plan.name.startswith("invoke_agent"))
    assert attempt.attributes["opscore.outcome"] == "failed"
    assert attempt.error == "TaskFailed"
    run = next(plan for plan in plans if plan.parent_span_id is None)
    assert run.error == "StepFailed"


def test_a_run_already_finished_plans_its_root_span_only_once() -> None:
    status, _ = _pass(WorkflowStatus(), at=0)
    failing = report("error", T0 + seconds(1), opscore_task_id=entry(status, "a").task_id)
    status, plans = _pass(status, failing, at=1)
    assert any(plan.parent_span_id is None for plan in plans)
    _, again = _pass(status, failing, at=5)
    assert again == []


def test_the_traceparent_names_the_attempts_span_in_the_runs_trace() -> None:
    decision = once(CHAIN, WorkflowStatus(), [agent("x")], T0)
    (dispatch,) = decision.dispatches
    value = dispatch_traceparent(REF, dispatch)
    version, trace_id, span_id, flags = value.split("-")
    assert (version, flags) == ("00", "01")
    assert int(trace_id, 16) == trace_id_for_run(REF.uid)
    assert int(span_id, 16) == attempt_span_id(dispatch.task_id)


def test_the_reports_of_the_attempt_are_its_events_and_others_are_not() -> None:
    status, _ = _pass(WorkflowStatus(), at=0)
    task = entry(status, "a").task_id or ""
    before_dispatch = report("idle", T0 - seconds(1))
    other_task = report("active", T0 + seconds(1), opscore_task_id="someone-else:x:0:1")
    untagged = report("active", T0 + seconds(1))
    finished = done(task, T0 + seconds(2))
    reports = [before_dispatch, other_task, untagged, finished]
    decision = once(CHAIN, status, [agent("x", *reports)], T0 + seconds(2))
    (attempt,) = planned_spans(
        ref=REF, before=status, decision=decision, now=T0 + seconds(2), reports={"x": reports}
    )
    assert [(e.at, e.attributes["opscore.report.state"]) for e in attempt.events] == [
        (T0 + seconds(1), "active"),
        (T0 + seconds(2), "idle"),
    ]
