"""Properties of approval gates over random decisions arriving at random times: a gated
step dispatches only once approved by someone listed (or by onTimeout: Approve), the
recorded decision never changes, and a pass repeated from the stored status does
nothing new (no dispatch, no Event, no status change)."""

from __future__ import annotations

from engine_harness import T0, agent, entry, once, seconds, spec, step
from hypothesis import given, settings
from hypothesis import strategies as st

from opscore_logic.approval import ApprovalGate, ApprovalRecord, Approver, Decision
from opscore_logic.workflow_model import WorkflowStatus

USERS = ("alice", "bob", "mallory")


@st.composite
def arrivals(draw: st.DrawFn) -> list[ApprovalRecord]:
    count = draw(st.integers(0, 5))
    return [
        ApprovalRecord(
            name=f"a{i}",
            created=T0 + seconds(draw(st.integers(-10, 40))),
            decision=draw(st.sampled_from(list(Decision))),
            approver=Approver(username=draw(st.sampled_from(USERS))),
        )
        for i in range(count)
    ]


@settings(max_examples=200, deadline=None)
@given(
    votes=arrivals(),
    timeout=st.sampled_from([None, 5, 30]),
    on_timeout=st.sampled_from(list(Decision)),
    pass_times=st.lists(st.integers(0, 60), min_size=1, max_size=8).map(sorted),
)
def test_a_gate_opens_only_for_a_listed_decision_and_never_changes_its_mind(
    votes: list[ApprovalRecord], timeout: int | None, on_timeout: Decision, pass_times: list[int]
) -> None:
    gate = ApprovalGate(users=["alice", "bob"], timeout_seconds=timeout, on_timeout=on_timeout)
    wf = spec(step("deploy", agent="x", approval=gate))
    status = WorkflowStatus()
    decided: Decision | None = None
    for at in pass_times:
        now = T0 + seconds(at)
        seen = [v for v in votes if v.created <= now]  # what the watch has delivered by now
        decision = once(wf, status, [agent("x")], now=now, approvals={"deploy": seen})
        record = entry(decision.status, "deploy").approval
        assert record is not None
        if decided is not None:
            assert record.decision is decided, "a recorded decision changed"
        decided = record.decision
        if decision.dispatches:
            assert record.decision is Decision.APPROVE
            assert record.timed_out or record.decided_by in ("alice", "bob")
        assert all(r.username == "mallory" for r in record.refused)
        stored = WorkflowStatus.model_validate(decision.status.wire())
        again = once(wf, stored, [agent("x")], now=now, approvals={"deploy": seen})
        assert again.dispatches == [], "a repeated pass dispatched again"
        assert again.events == [], "a repeated pass posted Events again"
        assert again.status.wire() == stored.wire(), "a repeated pass changed the status"
        status = decision.status
