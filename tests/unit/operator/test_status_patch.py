"""Telling, from the API server's copy, that a status write whose answer was lost took
effect: only the exact step entries that write carried count."""

from __future__ import annotations

from typing import Any

from opscore_logic.engine import Decision, Dispatch
from opscore_logic.workflow_model import WorkflowStatus
from opscore_operator.status_patch import holds_dispatches

ENTRY = {
    "name": "a",
    "phase": "Running",
    "agent": "x",
    "taskId": "uid:a:0:1",
    "attempt": 1,
    "dispatchedAt": "2026-12-02T10:00:00.000001Z",
}
WRITTEN = {"phase": "Running", "steps": [ENTRY, {"name": "b", "phase": "Pending"}]}


def decision(*steps: str) -> Decision:
    dispatches = [Dispatch(s, "x", "id-x", f"uid:{s}:0:1", s, {}, 1) for s in steps]
    return Decision(status=WorkflowStatus(), dispatches=dispatches)


def stored(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "wf"}, "status": {"phase": "Running", "steps": list(steps)}}


def test_a_copy_holding_the_written_entry_means_the_write_took_effect() -> None:
    assert holds_dispatches(stored(ENTRY), WRITTEN, decision("a"))


def test_a_copy_from_before_the_write_does_not() -> None:
    assert not holds_dispatches(stored({"name": "a", "phase": "Pending"}), WRITTEN, decision("a"))


def test_the_same_task_id_written_by_another_pass_does_not() -> None:
    other = {**ENTRY, "dispatchedAt": "2026-12-02T10:00:05Z"}
    assert not holds_dispatches(stored(other), WRITTEN, decision("a"))


def test_a_write_without_dispatches_is_never_taken_as_stored() -> None:
    assert not holds_dispatches(stored(ENTRY), WRITTEN, decision())
    assert not holds_dispatches(stored(ENTRY), WRITTEN, None)


def test_a_copy_without_status_does_not() -> None:
    assert not holds_dispatches({"metadata": {}}, WRITTEN, decision("a"))
