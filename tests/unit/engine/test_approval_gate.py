"""The approval gate's rule: who may decide, first decision wins, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from opscore_logic.approval import (
    ApprovalGate,
    ApprovalRecord,
    Approver,
    Decision,
    judge,
    refusal,
)

T0 = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)


def record(
    name: str,
    *,
    user: str,
    decision: Decision = Decision.APPROVE,
    at: int = 0,
    groups: tuple[str, ...] = (),
) -> ApprovalRecord:
    return ApprovalRecord(
        name=name,
        created=T0 + timedelta(seconds=at),
        decision=decision,
        approver=Approver(username=user, groups=groups),
    )


GATE = ApprovalGate(users=["alice"], groups=["sre"], timeout_seconds=60)


def test_a_listed_user_may_approve() -> None:
    assert refusal(GATE, Approver(username="alice")) is None


def test_a_member_of_a_listed_group_may_approve() -> None:
    assert refusal(GATE, Approver(username="bob", groups=("dev", "sre"))) is None


def test_an_unlisted_user_is_refused_with_who_may() -> None:
    why = refusal(GATE, Approver(username="mallory", groups=("dev",)))
    assert why == "mallory is not among those who may approve (users alice; groups sre)"


def test_a_gate_without_approvals_waits_until_its_timeout() -> None:
    verdict = judge(GATE, [], ready_since=T0, now=T0 + timedelta(seconds=10))
    assert verdict.decided is None
    assert verdict.wake_at == T0 + timedelta(seconds=60)


def test_a_gate_without_timeout_waits_with_no_wake_up() -> None:
    verdict = judge(ApprovalGate(users=["alice"]), [], ready_since=T0, now=T0)
    assert verdict.wake_at is None


def test_the_first_admissible_decision_wins_and_later_ones_are_ignored() -> None:
    first = record("a1", user="alice", decision=Decision.REJECT, at=5)
    later = record("a2", user="bob", groups=("sre",), at=9)
    verdict = judge(GATE, [later, first], ready_since=T0, now=T0)
    assert (verdict.decided, verdict.by, verdict.ignored) == (Decision.REJECT, first, (later,))


def test_an_unlisted_decision_does_not_count_and_is_reported() -> None:
    stranger = record("m1", user="mallory", at=1)
    verdict = judge(GATE, [stranger], ready_since=T0, now=T0 + timedelta(seconds=2))
    assert verdict.decided is None
    assert [r for r, _ in verdict.refused] == [stranger]


def test_an_approval_made_before_the_step_was_ready_counts() -> None:
    early = record("a0", user="alice", at=-30)
    assert judge(GATE, [early], ready_since=T0, now=T0).decided is Decision.APPROVE


def test_an_undecided_gate_rejects_at_its_timeout_by_default() -> None:
    verdict = judge(GATE, [], ready_since=T0, now=T0 + timedelta(seconds=60))
    assert (verdict.decided, verdict.timed_out) == (Decision.REJECT, True)


def test_on_timeout_approve_approves_an_undecided_gate() -> None:
    gate = ApprovalGate(users=["alice"], timeout_seconds=1, on_timeout=Decision.APPROVE)
    verdict = judge(gate, [], ready_since=T0, now=T0 + timedelta(seconds=1))
    assert verdict.decided is Decision.APPROVE


def test_a_decision_before_the_timeout_beats_the_timeout() -> None:
    verdict = judge(
        GATE, [record("a1", user="alice", at=30)], ready_since=T0, now=T0 + timedelta(hours=1)
    )
    assert (verdict.decided, verdict.timed_out) == (Decision.APPROVE, False)


def test_the_gate_reads_its_camel_case_wire_form() -> None:
    gate = ApprovalGate.model_validate(
        {"users": ["a"], "timeoutSeconds": 5, "onTimeout": "Approve"}
    )
    assert (gate.timeout_seconds, gate.on_timeout) == (5, Decision.APPROVE)


def test_a_zero_timeout_is_refused() -> None:
    with pytest.raises(ValidationError):
        ApprovalGate(users=["a"], timeout_seconds=0)
