"""The engine runs sequential steps one after another on the named agents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opscore_logic.agent_model import AgentReport
from opscore_logic.decision import Decision
from opscore_logic.engine import WorkflowRef, reconcile
from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import (
    Step,
    StepPhase,
    WorkflowPhase,
    WorkflowSpec,
    WorkflowStatus,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
REF = WorkflowRef(namespace="ns", name="wf", uid="uid-1")


def agent(name: str, *reports: AgentReport, free: int = 1) -> AgentView:
    return AgentView(
        name=name, agent_id=f"id-{name}", ready=True, free_slots=free, reports=tuple(reports)
    )


def report(state: str, at: datetime, **details: object) -> AgentReport:
    return AgentReport(state=state, timestamp=at, received_at=at, details=dict(details))


def spec(*agents: str) -> WorkflowSpec:
    return WorkflowSpec(steps=[Step(name=f"s{i}", agent=a) for i, a in enumerate(agents)])


def run(
    spec_: WorkflowSpec, status: WorkflowStatus, agents: list[AgentView], now: datetime
) -> Decision:
    return reconcile(
        ref=REF,
        spec=spec_,
        status=status,
        steps=spec_.steps,
        agents={a.name: a for a in agents},
        now=now,
    )


def test_first_pass_dispatches_only_the_first_step() -> None:
    d = run(spec("a", "b"), WorkflowStatus(), [agent("a"), agent("b")], T0)
    assert [x.step for x in d.dispatches] == ["s0"]
    assert d.dispatches[0].task_id == "uid-1:s0:0:1"
    assert d.status.phase is WorkflowPhase.RUNNING
    assert [s.phase for s in d.status.steps] == [StepPhase.RUNNING, StepPhase.PENDING]
    assert d.status.progress == "0/2"


def test_idle_after_dispatch_completes_the_step_and_dispatches_the_next() -> None:
    first = run(spec("a", "b"), WorkflowStatus(), [agent("a"), agent("b")], T0)
    later = T0 + timedelta(seconds=1)
    a = agent("a", report("active", later), report("idle", later + timedelta(milliseconds=10)))
    d = run(spec("a", "b"), first.status, [a, agent("b")], later + timedelta(seconds=1))
    assert [s.phase for s in d.status.steps] == [StepPhase.SUCCEEDED, StepPhase.RUNNING]
    assert [x.step for x in d.dispatches] == ["s1"]
    assert [r.result for r in d.releases] == ["succeeded"]


def test_idle_received_before_dispatch_does_not_complete_the_step() -> None:
    first = run(spec("a"), WorkflowStatus(), [agent("a")], T0)
    stale = agent("a", report("idle", T0 - timedelta(seconds=1)))
    d = run(spec("a"), first.status, [stale], T0 + timedelta(seconds=1))
    assert d.status.steps[0].phase is StepPhase.RUNNING
    assert d.dispatches == []


def test_error_report_fails_the_workflow_with_the_agents_message() -> None:
    first = run(spec("a", "b"), WorkflowStatus(), [agent("a"), agent("b")], T0)
    later = T0 + timedelta(seconds=1)
    a = agent("a", report("error", later, error_code="BOOM", message="disk full"))
    d = run(spec("a", "b"), first.status, [a, agent("b")], later)
    assert d.status.phase is WorkflowPhase.FAILED
    assert "BOOM: disk full" in (d.status.message or "")
    assert d.status.steps[1].phase is StepPhase.SKIPPED
    cond = d.status.conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("Succeeded", "False", "StepFailed")


def test_all_steps_done_succeeds_with_condition_true() -> None:
    status = WorkflowStatus()
    now = T0
    for _ in range(3):
        d = run(spec("a"), status, [agent("a")], now)
        status = d.status
        now += timedelta(seconds=1)
        if d.status.phase is WorkflowPhase.SUCCEEDED:
            break
        status = run(spec("a"), status, [agent("a", report("idle", now))], now).status
        if status.phase is WorkflowPhase.SUCCEEDED:
            break
    assert status.phase is WorkflowPhase.SUCCEEDED
    assert status.progress == "1/1"
    assert status.conditions[0].status == "True"
