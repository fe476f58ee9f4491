"""Approval gates in the engine's pass: a gated step waits, its Approvals decide, the
outcome is recorded, and the run follows (opscore_logic.gating)."""

from __future__ import annotations

from collections.abc import Sequence

from engine_harness import T0, agent, entry, once, seconds, spec, step, succeeded_condition

from opscore_logic.approval import ApprovalGate, ApprovalRecord, Approver, Decision
from opscore_logic.conditions import get_condition
from opscore_logic.engine import Decision as PassDecision
from opscore_logic.reasons import StepReason
from opscore_logic.workflow_model import StepPhase, WorkflowPhase, WorkflowSpec, WorkflowStatus

GATE = ApprovalGate(users=["alice"], groups=["sre"], message="deploy to prod?")
AGENTS = [agent("x")]


def gated(gate: ApprovalGate = GATE, *, continue_on_failure: bool = False) -> WorkflowSpec:
    return spec(
        step("deploy", agent="x", approval=gate, continue_on_failure=continue_on_failure),
        step("announce", agent="x"),
    )


def vote(
    name: str, user: str, decision: Decision = Decision.APPROVE, *, at: float = 0, why: str = ""
) -> ApprovalRecord:
    return ApprovalRecord(
        name=name,
        created=T0 + seconds(at),
        decision=decision,
        approver=Approver(username=user),
        reason=why,
    )


def run(
    wf: WorkflowSpec,
    status: WorkflowStatus | None = None,
    votes: Sequence[ApprovalRecord] = (),
    *,
    after: float = 0,
) -> PassDecision:
    return once(wf, status, AGENTS, now=T0 + seconds(after), approvals={"deploy": list(votes)})


def test_a_ready_gated_step_waits_and_says_who_may_approve() -> None:
    decision = run(gated())
    deploy = entry(decision.status, "deploy")
    assert decision.dispatches == []
    assert deploy.phase is StepPhase.WAITING_FOR_APPROVAL
    assert deploy.message == "waiting for approval by users alice; groups sre (deploy to prod?)"
    assert decision.status.phase is WorkflowPhase.RUNNING
    assert decision.status.message == f"deploy: {deploy.message}"


def test_a_waiting_gate_sets_the_awaiting_approval_condition_and_one_event() -> None:
    first = run(gated())
    second = run(gated(), first.status, after=5)
    cond = get_condition(second.status.conditions, "AwaitingApproval")
    assert cond is not None
    assert (cond.status, cond.reason) == ("True", "WaitingForApproval")
    assert [e.reason for e in first.events if e.reason == "ApprovalRequested"] == [
        "ApprovalRequested"
    ]
    assert not [e for e in second.events if e.reason == "ApprovalRequested"]


def test_a_listed_approval_dispatches_the_step_and_records_who_when_why() -> None:
    waiting = run(gated())
    decision = run(gated(), waiting.status, [vote("a1", "alice", why="change 42 ok")], after=3)
    deploy = entry(decision.status, "deploy")
    assert [d.step for d in decision.dispatches] == ["deploy"]
    assert deploy.approval is not None
    assert deploy.approval.decision is Decision.APPROVE
    assert deploy.approval.decided_by == "alice"
    assert deploy.approval.reason == "change 42 ok"
    assert deploy.approval.decided_at == T0 + seconds(3)
    assert deploy.approval.requested_at == T0
    cond = get_condition(decision.status.conditions, "AwaitingApproval")
    assert cond is not None
    assert cond.status == "False"


def test_a_group_member_may_approve() -> None:
    member = ApprovalRecord(
        name="g1",
        created=T0,
        decision=Decision.APPROVE,
        approver=Approver(username="bob", groups=("sre",)),
    )
    decision = run(gated(), votes=[member])
    assert [d.step for d in decision.dispatches] == ["deploy"]


def test_an_unlisted_approver_is_refused_with_a_reason_in_status() -> None:
    decision = run(gated(), votes=[vote("m1", "mallory")])
    deploy = entry(decision.status, "deploy")
    assert decision.dispatches == []
    assert deploy.phase is StepPhase.WAITING_FOR_APPROVAL
    assert deploy.approval is not None
    assert [(r.approval, r.username) for r in deploy.approval.refused] == [("m1", "mallory")]
    assert "mallory is not among those who may approve" in (deploy.message or "")


def test_a_rejection_fails_the_step_and_the_run_with_the_reason() -> None:
    decision = run(gated(), votes=[vote("r1", "alice", Decision.REJECT, why="not today")])
    deploy = entry(decision.status, "deploy")
    assert deploy.phase is StepPhase.FAILED
    assert deploy.reason is StepReason.APPROVAL_REJECTED
    assert deploy.message == "rejected by alice: not today"
    assert entry(decision.status, "announce").phase is StepPhase.SKIPPED
    assert decision.status.phase is WorkflowPhase.FAILED
    assert succeeded_condition(decision.status) == ("False", "StepFailed")
    assert "StepRejected" in [e.reason for e in decision.events]


def test_a_rejection_of_a_continue_on_failure_step_lets_the_run_go_on() -> None:
    wf = gated(continue_on_failure=True)
    decision = run(wf, votes=[vote("r1", "alice", Decision.REJECT)])
    assert entry(decision.status, "deploy").phase is StepPhase.FAILED
    assert [d.step for d in decision.dispatches] == ["announce"]
    assert decision.status.phase is WorkflowPhase.RUNNING


def test_an_approval_made_before_the_step_was_ready_applies_when_it_becomes_ready() -> None:
    wf = spec(step("build", agent="x"), step("deploy", agent="x", approval=GATE))
    early = [vote("a1", "alice", at=-60)]
    first = once(wf, None, AGENTS, now=T0, approvals={"deploy": early})
    assert entry(first.status, "deploy").phase is StepPhase.PENDING
    assert entry(first.status, "deploy").approval is None
    build = entry(first.status, "build")
    built = first.status.model_copy(deep=True)
    entry(built, "build").phase = StepPhase.SUCCEEDED
    entry(built, "build").finished_at = T0 + seconds(1)
    assert build.phase is StepPhase.RUNNING
    second = once(wf, built, AGENTS, now=T0 + seconds(2), approvals={"deploy": early})
    assert [d.step for d in second.dispatches] == ["deploy"]


def test_a_second_decision_changes_nothing() -> None:
    approved = run(gated(), votes=[vote("a1", "alice")])
    later = [vote("a1", "alice"), vote("r1", "alice", Decision.REJECT, at=-30)]
    decision = run(gated(), approved.status, later, after=1)
    deploy = entry(decision.status, "deploy")
    assert deploy.approval is not None
    assert deploy.approval.approval == "a1"
    assert deploy.phase is StepPhase.RUNNING


def test_an_undecided_gate_wakes_the_engine_at_its_timeout() -> None:
    gate = GATE.model_copy(update={"timeout_seconds": 60})
    decision = run(gated(gate), after=0)
    assert decision.requeue_after == 60


def test_a_timed_out_gate_rejects_by_default() -> None:
    gate = GATE.model_copy(update={"timeout_seconds": 60})
    waiting = run(gated(gate))
    decision = run(gated(gate), waiting.status, after=60)
    deploy = entry(decision.status, "deploy")
    assert deploy.phase is StepPhase.FAILED
    assert deploy.reason is StepReason.APPROVAL_TIMED_OUT
    assert deploy.approval is not None
    assert deploy.approval.timed_out


def test_a_timed_out_gate_with_on_timeout_approve_dispatches() -> None:
    gate = GATE.model_copy(update={"timeout_seconds": 60, "on_timeout": Decision.APPROVE})
    waiting = run(gated(gate))
    decision = run(gated(gate), waiting.status, after=61)
    assert [d.step for d in decision.dispatches] == ["deploy"]


def test_a_cancelled_run_stops_waiting_and_clears_the_condition() -> None:
    waiting = run(gated())
    cancelled = run(gated().model_copy(update={"cancel": True}), waiting.status, after=1)
    assert entry(cancelled.status, "deploy").phase is StepPhase.CANCELLED
    cond = get_condition(cancelled.status.conditions, "AwaitingApproval")
    assert cond is not None
    assert cond.status == "False"


def test_a_run_without_gates_gets_no_approval_condition() -> None:
    decision = once(spec(step("a", agent="x")), None, AGENTS)
    assert get_condition(decision.status.conditions, "AwaitingApproval") is None


def test_a_retry_of_a_rejected_run_fails_the_gated_step_again() -> None:
    rejected = run(gated(), votes=[vote("r1", "alice", Decision.REJECT)])
    retry = gated().model_copy(update={"retry_generation": 1})
    decision = run(retry, rejected.status, after=5)
    deploy = entry(decision.status, "deploy")
    assert decision.dispatches == []
    assert (deploy.phase, deploy.reason) == (StepPhase.FAILED, StepReason.APPROVAL_REJECTED)
