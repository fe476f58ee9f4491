"""`approve` / `reject`: the Approval written (as the API server says the caller is), and
the checks made before writing anything."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest

from opscore_cli.cluster import CliError, Cluster
from opscore_cli.deciding import approval_body, decide
from opscore_cli.tree import waiting_gates

WHO = {"username": "system:serviceaccount:ns:alice", "groups": ["system:authenticated"]}


def run(*, decided: str | None = None, gate: bool = True) -> dict[str, Any]:
    deploy: dict[str, Any] = {"name": "deploy", "agent": "x"}
    if gate:
        deploy["approval"] = {"users": ["alice"]}
    entry: dict[str, Any] = {"name": "deploy", "phase": "WaitingForApproval", "message": "m"}
    if decided:
        entry["approval"] = {"decision": decided, "decidedBy": "bob"}
    return {
        "metadata": {"name": "rel", "namespace": "ns", "uid": "u-1"},
        "spec": {"steps": [deploy]},
        "status": {"steps": [entry]},
    }


class StandIn:
    """The three calls `decide` makes, answered from memory."""

    def __init__(self, workflow: dict[str, Any]) -> None:
        self.namespace = "ns"
        self._workflow = workflow
        self.created: list[dict[str, Any]] = []

    def workflow(self, name: str) -> dict[str, Any]:
        return self._workflow

    def template(self, name: str) -> dict[str, Any] | None:
        return None

    def whoami(self) -> dict[str, Any]:
        return WHO

    def create_approval(self, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return {"metadata": {"name": "rel-deploy-abcde"}}


def test_the_approval_records_the_caller_as_the_api_server_names_them() -> None:
    body = approval_body(run(), "deploy", decision="Approve", reason="ok", who=WHO)
    assert body["spec"] == {
        "workflow": "rel",
        "step": "deploy",
        "decision": "Approve",
        "reason": "ok",
        "approver": {"username": WHO["username"], "groups": WHO["groups"]},
    }
    assert body["metadata"]["generateName"] == "rel-deploy-"


def test_the_approval_is_owned_by_the_run_so_it_goes_with_it() -> None:
    body = approval_body(run(), "deploy", decision="Reject", reason="", who=WHO)
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Workflow", "rel", "u-1")


def test_reject_creates_one_approval_and_says_so() -> None:
    cluster = StandIn(run())
    out = io.StringIO()
    decide(cast(Cluster, cluster), "rel", "deploy", verb="reject", reason="no", out=out)
    assert [b["spec"]["decision"] for b in cluster.created] == ["Reject"]
    assert "rejected as system:serviceaccount:ns:alice" in out.getvalue()


@pytest.mark.parametrize(
    ("workflow", "step", "message"),
    [
        (run(), "nope", 'workflow "rel" has no step "nope" (steps: deploy)'),
        (run(gate=False), "deploy", 'step "deploy" of workflow "rel" has no approval gate'),
        (run(decided="Approve"), "deploy", "already decided (Approve by bob)"),
    ],
)
def test_nothing_is_written_when_the_decision_would_not_count(
    workflow: dict[str, Any], step: str, message: str
) -> None:
    cluster = StandIn(workflow)
    with pytest.raises(CliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decide(cast(Cluster, cluster), "rel", step, verb="approve")
    assert cluster.created == []


def test_get_names_each_waiting_gate_and_the_command_to_decide_it() -> None:
    assert waiting_gates(run()) == ["deploy: m (kubectl opscore approve|reject rel deploy)"]
