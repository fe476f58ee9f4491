"""The operator's index of Approvals: by the Workflow and step they decide."""

from __future__ import annotations

from typing import Any

from opscore_logic.approval import Decision
from opscore_operator.approval_book import ApprovalBook


def approval(
    name: str, *, workflow: str = "wf", step: str = "deploy", **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "creationTimestamp": "2026-12-03T06:00:00Z"},
        "spec": {
            "workflow": workflow,
            "step": step,
            "decision": "Approve",
            "approver": {"username": "alice", "groups": ["sre"]},
            **spec,
        },
    }


def test_an_approval_is_found_under_its_workflow_and_step_and_wakes_the_workflow() -> None:
    book = ApprovalBook()
    assert book.note("ADDED", approval("a1", reason="ok")) == ("ns", "wf")
    [record] = book.for_workflow(("ns", "wf"), "uid-1")["deploy"]
    assert (record.name, record.decision, record.reason) == ("a1", Decision.APPROVE, "ok")
    assert record.approver.groups == ("sre",)


def test_a_deleted_approval_is_forgotten() -> None:
    book = ApprovalBook()
    book.note("ADDED", approval("a1"))
    assert book.note("DELETED", approval("a1")) == ("ns", "wf")
    assert book.for_workflow(("ns", "wf"), "uid-1") == {}
    assert len(book) == 0


def test_approvals_of_other_workflows_are_not_mixed_in() -> None:
    book = ApprovalBook()
    book.note("ADDED", approval("a1"))
    book.note("ADDED", approval("b1", workflow="other"))
    assert [r.name for r in book.for_workflow(("ns", "wf"), "uid-1")["deploy"]] == ["a1"]


def test_an_unreadable_approval_is_left_out_without_raising() -> None:
    book = ApprovalBook()
    assert book.note("ADDED", approval("bad", decision="Maybe")) is None
    assert book.for_workflow(("ns", "wf"), "uid-1") == {}


def test_an_approval_owned_by_an_earlier_run_of_the_same_name_does_not_count() -> None:
    book = ApprovalBook()
    old = approval("a1")
    old["metadata"]["ownerReferences"] = [{"kind": "Workflow", "name": "wf", "uid": "uid-old"}]
    book.note("ADDED", old)
    assert book.for_workflow(("ns", "wf"), "uid-new") == {}
    assert [r.name for r in book.for_workflow(("ns", "wf"), "uid-old")["deploy"]] == ["a1"]
