"""The engine counts each ended attempt's reported usage on its step and run, once, and
stops dispatching when a run's budget is spent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine_harness import T0, agent, entry, once, phases, report, seconds, spec, step

from opscore_logic.agent_model import AgentReport
from opscore_logic.budget import Budget, OnExceeded
from opscore_logic.decision import Decision
from opscore_logic.reasons import StepReason, WorkflowReason
from opscore_logic.selection import AgentView
from opscore_logic.usage import Usage
from opscore_logic.workflow_model import StepPhase, WorkflowPhase, WorkflowSpec, WorkflowStatus


def used(tokens_in: int, tokens_out: int, cost: float | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": tokens_in, "output_tokens": tokens_out, "model": "m1"}
    if cost is not None:
        usage.update(cost=cost, currency="USD")
    return usage


def idle(task_id: str | None, at_s: float, **usage: Any) -> AgentReport:
    details: dict[str, Any] = {"usage": used(**usage)} if usage else {}
    if task_id is not None:
        details["opscore_task_id"] = task_id
    return report("idle", T0 + seconds(at_s), **details)


def running(wf: WorkflowSpec, *agents: AgentView) -> WorkflowStatus:
    """The status after the first pass dispatched what it could."""
    return once(wf, agents=agents).status


def in_flight(view: AgentView, tasks: int) -> AgentView:
    return replace(view, tasks_in_flight=tasks)


CHAIN = spec(step("a", agent="x"), step("b", agent="x"))


def test_usage_reported_with_the_task_id_is_counted_on_its_step_and_the_run() -> None:
    status = running(CHAIN, agent("x"))
    task = entry(status, "a").task_id
    assert task is not None
    x = agent("x", idle(task, 1, tokens_in=100, tokens_out=20, cost=0.25))
    d = once(CHAIN, status, [in_flight(x, 1)], T0 + seconds(2))
    step_usage = entry(d.status, "a").usage
    assert step_usage == Usage(
        input_tokens=100, output_tokens=20, total_tokens=120, cost={"USD": 0.25}, reports=1
    )
    assert d.status.usage == step_usage


def test_usage_without_a_task_id_is_the_only_running_tasks() -> None:
    status = running(CHAIN, agent("x"))
    x = agent("x", idle(None, 1, tokens_in=7, tokens_out=3))
    d = once(CHAIN, status, [in_flight(x, 1)], T0 + seconds(2))
    usage = entry(d.status, "a").usage
    assert usage is not None
    assert usage.total_tokens == 10


def test_usage_without_a_task_id_while_the_agent_runs_several_tasks_is_unattributed() -> None:
    status = running(CHAIN, agent("x"))
    x = agent("x", idle(None, 1, tokens_in=7, tokens_out=3))
    d = once(CHAIN, status, [in_flight(x, 2)], T0 + seconds(2))
    assert entry(d.status, "a").usage is None
    assert d.status.usage is None
    (released,) = d.releases
    assert [m.usage.total_tokens for m in released.usage.unattributed] == [10]
    assert released.usage.attributed == ()


def test_usage_of_another_task_is_not_counted_on_this_step() -> None:
    status = running(CHAIN, agent("x"))
    task = entry(status, "a").task_id
    assert task is not None
    x = agent(
        "x",
        report("active", T0 + seconds(1), opscore_task_id="other:1", usage=used(50, 50)),
        idle(task, 2, tokens_in=1, tokens_out=1),
    )
    d = once(CHAIN, status, [in_flight(x, 2)], T0 + seconds(3))
    usage = entry(d.status, "a").usage
    assert usage is not None
    assert usage.total_tokens == 2


def test_a_pass_over_a_written_end_counts_nothing_again() -> None:
    """The status that ended the attempt holds its usage; the same reports seen again
    (a replayed report, a restarted operator) add nothing."""
    wf = spec(step("a", agent="x"))
    status = running(wf, agent("x"))
    task = entry(status, "a").task_id
    assert task is not None
    x = agent("x", idle(task, 1, tokens_in=5, tokens_out=5))
    ended = once(wf, status, [in_flight(x, 1)], T0 + seconds(2)).status
    again = once(wf, ended, [in_flight(x, 0)], T0 + seconds(3))
    assert again.status.usage == ended.usage
    assert ended.usage is not None
    assert ended.usage.total_tokens == 10
    assert again.releases == []


def test_a_retried_step_keeps_the_usage_of_its_failed_attempt() -> None:
    wf = spec(step("a", agent="x", retries=1, backoff=0))
    status = running(wf, agent("x"))
    first = entry(status, "a").task_id
    assert first is not None
    failing = report(
        "error",
        T0 + seconds(1),
        opscore_task_id=first,
        error_code="E",
        message="boom",
        usage=used(10, 0),
    )
    retried = once(wf, status, [in_flight(agent("x", failing), 1)], T0 + seconds(2)).status
    second = entry(retried, "a").task_id
    assert second is not None
    assert second != first
    x = agent("x", failing, idle(second, 3, tokens_in=1, tokens_out=1))
    d = once(wf, retried, [in_flight(x, 1)], T0 + seconds(4))
    usage = entry(d.status, "a").usage
    assert entry(d.status, "a").phase is StepPhase.SUCCEEDED
    assert usage is not None
    assert usage.total_tokens == 12
    assert usage.reports == 2


FAN = spec(
    step("a", agent="x", after=[]),
    step("b", agent="y", after=[]),
    step("c", agent="x", after=["a"]),
)
TOKEN_BUDGET = Budget(max_tokens=100)


def over_budget_after_a(wf: WorkflowSpec) -> Decision:
    status = running(wf, agent("x"), agent("y"))
    task = entry(status, "a").task_id
    assert task is not None
    x = agent("x", idle(task, 1, tokens_in=90, tokens_out=20))
    return once(wf, status, [in_flight(x, 1), in_flight(agent("y", free=0), 1)], T0 + seconds(2))


def test_a_spent_budget_dispatches_nothing_more_while_a_running_step_finishes() -> None:
    wf = FAN.model_copy(update={"budget": TOKEN_BUDGET})
    d = over_budget_after_a(wf)
    assert d.dispatches == []
    assert phases(d.status) == {
        "a": StepPhase.SUCCEEDED,
        "b": StepPhase.RUNNING,
        "c": StepPhase.PENDING,
    }
    assert d.status.phase is WorkflowPhase.RUNNING
    assert d.status.message is not None
    assert "budget exceeded" in d.status.message
    assert [e.reason for e in d.events if e.reason == "BudgetExceeded"] == ["BudgetExceeded"]


def test_the_run_fails_budget_exceeded_once_the_running_step_ended_and_counts_its_usage() -> None:
    wf = FAN.model_copy(update={"budget": TOKEN_BUDGET})
    d = over_budget_after_a(wf)
    b_task = entry(d.status, "b").task_id
    assert b_task is not None
    y = agent("y", idle(b_task, 3, tokens_in=4, tokens_out=1))
    end = once(wf, d.status, [in_flight(y, 1), agent("x")], T0 + seconds(4))
    assert end.dispatches == []
    assert end.status.phase is WorkflowPhase.FAILED
    cond = next(c for c in end.status.conditions if c.type == "Succeeded")
    assert cond.reason == WorkflowReason.BUDGET_EXCEEDED
    assert end.status.usage is not None
    assert end.status.usage.total_tokens == 115
    assert entry(end.status, "c").phase is StepPhase.CANCELLED
    assert entry(end.status, "c").reason == StepReason.BUDGET_EXCEEDED
    assert [e.reason for e in end.events if e.reason == "BudgetExceeded"] == []


def test_a_cost_budget_counts_only_its_currency() -> None:
    wf = spec(step("a", agent="x"), step("b", agent="x")).model_copy(
        update={"budget": Budget(max_cost=1.0, currency="EUR")}
    )
    status = running(wf, agent("x"))
    task = entry(status, "a").task_id
    assert task is not None
    x = agent("x", idle(task, 1, tokens_in=1, tokens_out=1, cost=5.0))  # USD
    d = once(wf, status, [in_flight(x, 1)], T0 + seconds(2))
    assert [x.step for x in d.dispatches] == ["b"]


def test_on_exceeded_suspend_suspends_the_run_until_the_budget_is_raised() -> None:
    wf = FAN.model_copy(update={"budget": Budget(max_tokens=100, on_exceeded=OnExceeded.SUSPEND)})
    d = over_budget_after_a(wf)
    assert d.status.phase is WorkflowPhase.SUSPENDED
    assert d.dispatches == []
    raised = wf.model_copy(update={"budget": Budget(max_tokens=1000)})
    resumed = once(
        raised, d.status, [agent("x"), in_flight(agent("y", free=0), 1)], T0 + seconds(3)
    )
    assert [x.step for x in resumed.dispatches] == ["c"]


def test_a_template_budget_applies_when_the_workflow_sets_none() -> None:
    d = over_budget_after_a(FAN)
    assert [x.step for x in d.dispatches] == ["c"]  # no budget at all: c starts
    status = running(FAN, agent("x"), agent("y"))
    task = entry(status, "a").task_id
    assert task is not None
    x = agent("x", idle(task, 1, tokens_in=90, tokens_out=20))
    views = [in_flight(x, 1), in_flight(agent("y", free=0), 1)]
    limited = once(FAN, status, views, T0 + seconds(2), default_budget=TOKEN_BUDGET)
    assert limited.dispatches == []
