"""Approval gates on the real API server, decided under different identities.

Each person is a ServiceAccount with its own token (the harness's TokenRequest
kubeconfigs), so the API server authenticates them as it would real users: `alice` may
approve the gated step, `mallory` may create Approvals (RBAC) but is not on the step's
list, `carol` may read Workflows but has no RBAC for Approvals. The decisions go through
the installed `kubectl-opscore` plugin, as a person would make them; the forged one is
written with kubectl directly, since the plugin never forges.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_support import (
    API_VERSION,
    apply,
    events_for,
    steps_of,
    wait_finished,
    wait_step,
    wait_workflow,
    workflow,
)

from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack

PLUGIN = Path(sys.executable).parent / "kubectl-opscore"
POLICY = REPO / "deploy" / "approvals"


@dataclass(frozen=True)
class Person:
    username: str
    kubeconfig: Path


@dataclass(frozen=True)
class People:
    alice: Person  # listed on the gate, may create Approvals
    mallory: Person  # may create Approvals, not listed
    carol: Person  # may read Workflows, no RBAC for Approvals


@pytest.fixture(scope="module")
def approval_policy(crds: ControlPlane) -> ControlPlane:
    """The admission policy and the approver ClusterRole, as deploy/ installs them."""
    crds.kubectl("apply", "--server-side", "-k", str(POLICY))
    return crds


@pytest.fixture
def people(approval_policy: ControlPlane, stack: OpsCoreStack) -> People:
    cp, ns = approval_policy, stack.namespace

    def person(name: str) -> Person:
        return Person(f"system:serviceaccount:{ns}:{name}", cp.service_account_kubeconfig(ns, name))

    found = People(alice=person("alice"), mallory=person("mallory"), carol=person("carol"))
    for name in ("alice", "mallory"):
        cp.kubectl(
            "create", "rolebinding", f"approver-{name}", "-n", ns,
            "--clusterrole=opscore-approver", f"--serviceaccount={ns}:{name}",
        )  # fmt: skip
    cp.kubectl(
        "create", "role", "workflow-reader", "-n", ns, "--verb=get",
        "--resource=workflows.opscore.opspawn.io",
    )  # fmt: skip
    cp.kubectl(
        "create", "rolebinding", "reader-carol", "-n", ns, "--role=workflow-reader",
        f"--serviceaccount={ns}:carol",
    )  # fmt: skip
    _wait_policy_enforced(cp, ns, found.alice)
    return found


def _wait_policy_enforced(cp: ControlPlane, namespace: str, who: Person) -> None:
    """A new policy takes the API server a moment to load; until a forged Approval is
    refused, the tests below would prove nothing (the probe's Approval, if admitted
    meanwhile, names no workflow that exists and is deleted)."""

    def refused() -> bool:
        result = _create(cp, namespace, who, "policy-probe", approver="someone-else")
        if result.returncode == 0:
            cp.kubectl("delete", "approval", "policy-probe", "-n", namespace, check=False)
            return False
        return "ValidatingAdmissionPolicy" in result.stderr

    wait_until(refused, timeout=30, interval=0.2, what="the approval policy to be enforced")


def _create(
    cp: ControlPlane,
    namespace: str,
    who: Person,
    name: str,
    *,
    approver: str,
    groups: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    body: dict[str, object] = {
        "apiVersion": API_VERSION,
        "kind": "Approval",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "workflow": "gated",
            "step": "deploy",
            "decision": "Approve",
            "approver": {"username": approver, **({"groups": groups} if groups else {})},
        },
    }
    return cp.kubectl(
        "create", "-f", "-", input=json.dumps(body), kubeconfig=who.kubeconfig, check=False
    )


def opscore(stack: OpsCoreStack, who: Person, *args: str) -> subprocess.CompletedProcess[str]:
    """The plugin, run as `who`."""
    env = stack.cp.env()
    env["KUBECONFIG"] = str(who.kubeconfig)
    return subprocess.run(
        [str(PLUGIN), *args, "-n", stack.namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def gated(people: People, **gate: object) -> dict[str, object]:
    approval = {"users": [people.alice.username], "message": "deploy to prod?", **gate}
    return workflow(
        "gated",
        {"name": "deploy", "agent": "researcher", "task": "research", "approval": approval},
        {"name": "announce", "agent": "writer", "task": "write"},
    )


def test_a_listed_approver_approves_and_the_step_runs(stack: OpsCoreStack, people: People) -> None:
    apply(stack, gated(people))
    waiting = wait_step(stack, "gated", "deploy", "WaitingForApproval")
    assert people.alice.username in steps_of(waiting)["deploy"]["message"]
    awaiting = [c for c in waiting["status"]["conditions"] if c["type"] == "AwaitingApproval"]
    assert [(c["status"], c["reason"]) for c in awaiting] == [("True", "WaitingForApproval")]
    shown = opscore(stack, people.alice, "get", "gated")
    assert "Waiting:" in shown.stdout
    assert "kubectl opscore approve|reject gated deploy" in shown.stdout

    decided = opscore(stack, people.alice, "approve", "gated", "deploy", "--reason", "CHG-42")
    assert decided.returncode == 0, decided.stderr
    done = wait_finished(stack, "gated")
    assert done["status"]["phase"] == "Succeeded"
    record = steps_of(done)["deploy"]["approval"]
    assert (record["decision"], record["decidedBy"], record["reason"]) == (
        "Approve",
        people.alice.username,
        "CHG-42",
    )
    assert record["decidedAt"] >= record["requestedAt"]
    reasons = [e["reason"] for e in events_for(stack, "gated")]
    assert "StepApproved" in reasons
    header, row = stack.cp.kubectl("get", "approvals", "-n", stack.namespace).stdout.split("\n")[:2]
    assert header.split() == ["NAME", "WORKFLOW", "STEP", "DECISION", "APPROVER", "AGE"]
    assert row.split()[1:5] == ["gated", "deploy", "Approve", people.alice.username]


def test_an_unlisted_user_is_refused_with_a_reason_in_status(
    stack: OpsCoreStack, people: People
) -> None:
    apply(stack, gated(people))
    wait_step(stack, "gated", "deploy", "WaitingForApproval")
    made = opscore(stack, people.mallory, "approve", "gated", "deploy")
    assert made.returncode == 0, made.stderr  # RBAC lets mallory record a decision...

    def refused(wf: dict[str, object]) -> bool:
        record = steps_of(wf)["deploy"].get("approval") or {}
        return bool(record.get("refused"))

    wf = wait_workflow(stack, "gated", refused, what="mallory's approval refused")
    deploy = steps_of(wf)["deploy"]
    assert deploy["phase"] == "WaitingForApproval"  # ...which does not count
    [refusal] = deploy["approval"]["refused"]
    assert refusal["username"] == people.mallory.username
    assert "is not among those who may approve" in refusal["why"]
    assert "refused" in deploy["message"]


def test_a_user_without_rbac_gets_forbidden(stack: OpsCoreStack, people: People) -> None:
    apply(stack, gated(people))
    wait_step(stack, "gated", "deploy", "WaitingForApproval")
    denied = opscore(stack, people.carol, "approve", "gated", "deploy")
    assert denied.returncode == 1
    assert "Error from server (Forbidden)" in denied.stderr
    assert 'cannot create resource "approvals"' in denied.stderr


def test_a_forged_approver_is_refused_by_the_admission_policy(
    stack: OpsCoreStack, people: People
) -> None:
    apply(stack, gated(people))
    wait_step(stack, "gated", "deploy", "WaitingForApproval")
    forged = _create(
        stack.cp, stack.namespace, people.mallory, "forged", approver=people.alice.username
    )
    assert forged.returncode != 0
    assert "ValidatingAdmissionPolicy 'opscore-approval-identity'" in forged.stderr
    assert f"you are {people.mallory.username}, not {people.alice.username}" in forged.stderr
    listed = stack.cp.kubectl("get", "approvals", "-n", stack.namespace, "-o", "name").stdout
    assert "forged" not in listed
    assert (
        steps_of(wait_step(stack, "gated", "deploy", "WaitingForApproval"))["deploy"]["phase"]
        == "WaitingForApproval"
    )


def test_a_rejection_fails_the_step_and_the_run(stack: OpsCoreStack, people: People) -> None:
    apply(stack, gated(people))
    wait_step(stack, "gated", "deploy", "WaitingForApproval")
    made = opscore(stack, people.alice, "reject", "gated", "deploy", "--reason", "freeze week")
    assert made.returncode == 0, made.stderr
    done = wait_finished(stack, "gated")
    deploy, announce = steps_of(done)["deploy"], steps_of(done)["announce"]
    assert done["status"]["phase"] == "Failed"
    assert (deploy["phase"], deploy["reason"]) == ("Failed", "ApprovalRejected")
    assert deploy["message"] == f"rejected by {people.alice.username}: freeze week"
    assert announce["phase"] == "Skipped"
    again = opscore(stack, people.alice, "approve", "gated", "deploy")
    assert again.returncode == 1
    assert "already decided" in again.stderr


def test_an_undecided_gate_times_out_and_rejects(stack: OpsCoreStack, people: People) -> None:
    apply(stack, gated(people, timeoutSeconds=2))
    done = wait_finished(stack, "gated", timeout=30)
    deploy = steps_of(done)["deploy"]
    assert (deploy["phase"], deploy["reason"]) == ("Failed", "ApprovalTimedOut")
    assert deploy["approval"]["timedOut"] is True
    assert done["status"]["phase"] == "Failed"


def test_an_approval_made_before_the_step_is_ready_applies_when_it_is(
    stack: OpsCoreStack, people: People
) -> None:
    first = {"name": "build", "agent": "writer", "task": "write"}
    gate = {"users": [people.alice.username]}
    apply(
        stack,
        workflow(
            "gated",
            first,
            {"name": "deploy", "agent": "researcher", "task": "research", "approval": gate},
            suspend=True,
        ),
    )
    wait_step(stack, "gated", "build", "Pending")
    made = opscore(stack, people.alice, "approve", "gated", "deploy")
    assert made.returncode == 0, made.stderr
    stack.cp.kubectl(
        "patch", "workflow", "gated", "-n", stack.namespace, "--type", "merge",
        "-p", json.dumps({"spec": {"suspend": False}}),
    )  # fmt: skip
    done = wait_finished(stack, "gated")
    assert done["status"]["phase"] == "Succeeded"
    record = steps_of(done)["deploy"]["approval"]
    assert record["decidedBy"] == people.alice.username


def test_an_approval_made_while_the_operator_is_down_applies_when_it_is_back(
    stack: OpsCoreStack, people: People
) -> None:
    apply(stack, gated(people))
    wait_step(stack, "gated", "deploy", "WaitingForApproval")
    assert stack.operator is not None
    stack.operator.stop()
    made = opscore(stack, people.alice, "approve", "gated", "deploy")
    assert made.returncode == 0, made.stderr
    stack.start_operator()
    done = wait_finished(stack, "gated")
    assert done["status"]["phase"] == "Succeeded"
    assert steps_of(done)["deploy"]["approval"]["decidedBy"] == people.alice.username


def test_a_member_of_a_listed_group_approves_with_the_groups_the_api_server_gave(
    stack: OpsCoreStack, people: People
) -> None:
    team = f"system:serviceaccounts:{stack.namespace}"  # every ServiceAccount of the namespace
    apply(stack, gated(people, users=[], groups=[team]))
    wait_step(stack, "gated", "deploy", "WaitingForApproval")
    made = opscore(stack, people.mallory, "approve", "gated", "deploy")
    assert made.returncode == 0, made.stderr
    done = wait_finished(stack, "gated")
    assert done["status"]["phase"] == "Succeeded"
    assert steps_of(done)["deploy"]["approval"]["decidedBy"] == people.mallory.username


def test_a_forged_group_claim_is_refused_by_the_admission_policy(
    stack: OpsCoreStack, people: People
) -> None:
    forged = _create(
        stack.cp,
        stack.namespace,
        people.mallory,
        "forged-group",
        approver=people.mallory.username,
        groups=["release-managers"],
    )
    assert forged.returncode != 0
    assert "spec.approver.groups must be groups of the requesting user" in forged.stderr
    assert "not release-managers" in forged.stderr
