"""Step reasons are a type in memory and the same strings on the wire."""

from __future__ import annotations

from opscore_logic.reasons import StepReason
from opscore_logic.workflow_model import StepPhase, StepStatus, WorkflowStatus


def test_a_known_stored_reason_parses_to_its_member() -> None:
    entry = StepStatus.model_validate({"name": "a", "phase": "Skipped", "reason": "WhenFalse"})

    assert entry.reason is StepReason.WHEN_FALSE


def test_a_reason_this_version_does_not_know_is_kept_as_text() -> None:
    stored = {"steps": [{"name": "a", "phase": "Failed", "reason": "QuotaExceeded"}]}

    status = WorkflowStatus.model_validate(stored)

    assert status.steps[0].phase is StepPhase.FAILED
    assert status.steps[0].reason == "QuotaExceeded"
    assert not isinstance(status.steps[0].reason, StepReason)
    assert status.wire()["steps"][0]["reason"] == "QuotaExceeded"


def test_a_member_is_written_as_its_wire_string() -> None:
    entry = StepStatus(name="a", phase=StepPhase.SKIPPED, reason=StepReason.UPSTREAM_FAILED)

    assert entry.wire()["reason"] == "UpstreamFailed"
