"""Approval gates in the engine's pass: a ready step with `approval` waits until its
Approvals (or the clock) decide, and the outcome is recorded in the step's status.

Part of `opscore_logic.engine.reconcile`, kept apart so the engine only asks one
question per ready step (`admit`). The rule itself (who may decide, first admissible
decision wins, timeouts) is `opscore_logic.approval.judge`; this module applies it to a
step's status:

- The gate opens once per step: `status.steps[].approval.decision` is written the first
  time the gate decides and never re-judged, so a second Approval changes nothing, and a
  retried attempt (or a `retryGeneration` retry) does not ask again. A rejected step
  stays rejected on a retry of the run: the decision is a record (docs/approvals.md).
- The wait starts (`requestedAt`) the first pass the step is ready, so an Approval
  created earlier counts at once, and `timeoutSeconds` runs from that moment.
- Events: `ApprovalRequested` once, when the step starts to wait; `StepApproved` or
  `StepRejected` (a Warning) when decided. Each is one API write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from opscore_logic.approval import ApprovalRecord, Decision, judge, who_may_approve
from opscore_logic.approval_model import MAX_REFUSALS, GateRefusal, StepApproval
from opscore_logic.conditions import get_condition, set_condition
from opscore_logic.decision import Decision as PassDecision
from opscore_logic.decision import EngineEvent
from opscore_logic.reasons import StepReason
from opscore_logic.workflow_model import Step, StepPhase, StepStatus, WorkflowStatus

GATE_CONDITION = "AwaitingApproval"


def admit(
    step: Step,
    entry: StepStatus,
    records: Sequence[ApprovalRecord],
    decision: PassDecision,
    now: datetime,
) -> bool:
    """True when a ready step may go on to dispatch (no gate, or it was approved). False
    when it waits (`WaitingForApproval`) or was rejected (`Failed`): `entry` says which."""
    gate = step.approval
    if gate is None:
        return True
    record = entry.approval or StepApproval(requested_at=now)
    entry.approval = record
    if record.decision is Decision.APPROVE:
        return True
    if record.decision is Decision.REJECT:
        _fail(entry, now)  # a run retried after a rejection: the rejection stands
        return False
    verdict = judge(gate, list(records), ready_since=record.requested_at, now=now)
    _note_refusals(record, verdict.refused)
    if verdict.decided is None:
        was_waiting = entry.phase is StepPhase.WAITING_FOR_APPROVAL
        entry.phase = StepPhase.WAITING_FOR_APPROVAL
        entry.reason = StepReason.WAITING_FOR_APPROVAL
        entry.message = _waiting_message(step, record)
        if verdict.wake_at is not None:
            decision.wake_at(verdict.wake_at, now)
        if not was_waiting:
            decision.events.append(
                EngineEvent("ApprovalRequested", f"{step.name}: {entry.message}")
            )
        return False
    record.decision = verdict.decided
    record.decided_at = now
    record.timed_out = verdict.timed_out
    if verdict.by is not None:
        record.decided_by = verdict.by.approver.username
        record.reason = verdict.by.reason or None
        record.approval = verdict.by.name
    if verdict.decided is Decision.APPROVE:
        decision.events.append(EngineEvent("StepApproved", f"{step.name}: {_decided(record)}"))
        return True
    _fail(entry, now)
    decision.events.append(EngineEvent("StepRejected", f"{step.name}: {entry.message}", "Warning"))
    return False


def set_gate_condition(status: WorkflowStatus, *, now: datetime, generation: int) -> None:
    """`AwaitingApproval`: True while a step waits for a person (which, and who may
    decide), False once none does. Only on runs that have met a gate, so runs without
    one carry no extra condition (and no extra status churn)."""
    waiting = [e for e in status.steps if e.phase is StepPhase.WAITING_FOR_APPROVAL]
    gated = any(e.approval is not None for e in status.steps)
    if not gated and get_condition(status.conditions, GATE_CONDITION) is None:
        return
    state: Literal["True", "False"] = "True" if waiting else "False"
    message = "; ".join(f"{e.name}: {e.message}" for e in waiting) or "no step waits for approval"
    status.conditions = set_condition(
        status.conditions,
        type=GATE_CONDITION,
        status=state,
        reason=StepReason.WAITING_FOR_APPROVAL if waiting else "NoneWaiting",
        message=message,
        now=now,
        generation=generation,
    )


def _fail(entry: StepStatus, now: datetime) -> None:
    assert entry.approval is not None
    entry.phase = StepPhase.FAILED
    entry.finished_at = now
    timed_out = entry.approval.timed_out
    entry.reason = StepReason.APPROVAL_TIMED_OUT if timed_out else StepReason.APPROVAL_REJECTED
    entry.message = _decided(entry.approval)


def _decided(record: StepApproval) -> str:
    verb = "approved" if record.decision is Decision.APPROVE else "rejected"
    if record.timed_out:
        return f"{verb} by onTimeout: nobody decided in time"
    why = f": {record.reason}" if record.reason else ""
    return f"{verb} by {record.decided_by}{why}"


def _waiting_message(step: Step, record: StepApproval) -> str:
    assert step.approval is not None
    message = f"waiting for approval by {who_may_approve(step.approval)}"
    if step.approval.message:
        message += f" ({step.approval.message})"
    if record.refused:
        last = record.refused[-1]
        message += f"; refused {last.username}: {last.why}"
    return message


def _note_refusals(record: StepApproval, refused: Sequence[tuple[ApprovalRecord, str]]) -> None:
    known = {r.approval for r in record.refused}
    for approval, why in refused:
        if len(record.refused) >= MAX_REFUSALS:
            return
        if approval.name not in known:
            record.refused.append(
                GateRefusal(approval=approval.name, username=approval.approver.username, why=why)
            )
            known.add(approval.name)
