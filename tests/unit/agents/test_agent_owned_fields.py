"""The operator writes every Agent status field but the sidecar's `reports` and the
`reportSequence` that fences them."""

from __future__ import annotations

from datetime import UTC, datetime

from opscore_logic.agent_model import AgentReport, AgentState, AgentStatus
from opscore_operator.agent_reconciler import _owned

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_the_operator_owns_every_status_field_except_the_reports_and_their_sequence() -> None:
    status = AgentStatus(
        reports=[AgentReport(state="idle", timestamp=T0, received_at=T0)],
        report_sequence=7,
        state=AgentState.IDLE,
        raw_state="idle",
        state_since=T0,
        last_seen=T0,
        current_task="summarise",
        current_task_id="t-1",
        active_tasks=1,
        tasks_succeeded=2,
        tasks_failed=3,
        last_error="boom",
        observed_generation=4,
    )

    owned = _owned(status)

    assert "reports" not in owned
    assert "reportSequence" not in owned  # the operator writing it would defeat the fence
    assert set(owned) == set(status.wire()) - {"reports", "reportSequence"}
    assert owned["lastError"] == "boom"
