"""`approve` and `reject`: record a decision on a gated step as an Approval resource.

The approver recorded is who the API server says the caller is (a SelfSubjectReview,
authentication.k8s.io/v1), not a name typed on the command line: the admission policy
(deploy/approvals/approval-policy.yaml) refuses any other, so asking the server first
is the only way to write one it admits. RBAC decides whether the caller may create
Approvals in the namespace at all; the operator decides whether the caller may decide
this step (`approval.users` / `approval.groups`) and writes the outcome into the step's
status. The Approval is owned by the Workflow, so it goes when the run goes.

Checked first, as a person would: the workflow exists, the step exists and has a gate,
and it is not decided yet (a second decision would change nothing; saying so beats a
silent record).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from opscore_cli.cluster import Body, CliError, Cluster
from opscore_cli.commands import rows_of

DECISIONS = {"approve": "Approve", "reject": "Reject"}
MAX_NAME = 253


def decide(
    cluster: Cluster,
    name: str,
    step: str,
    *,
    verb: str,
    reason: str = "",
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    workflow = cluster.workflow(name)
    _check_step(cluster, workflow, step)
    identity = cluster.whoami()
    body = approval_body(workflow, step, decision=DECISIONS[verb], reason=reason, who=identity)
    created = cluster.create_approval(body)
    approval = (created.get("metadata") or {}).get("name", "")
    past = "approved" if verb == "approve" else "rejected"
    out.write(
        f"approval.opscore.opspawn.io/{approval} created: step {step} of workflow {name} "
        f"{past} as {identity['username']}\n"
    )
    return 0


def approval_body(
    workflow: Mapping[str, Any], step: str, *, decision: str, reason: str, who: Mapping[str, Any]
) -> Body:
    """The Approval for `step` of `workflow` by `who` (a SelfSubjectReview's userInfo)."""
    meta = workflow.get("metadata") or {}
    name = str(meta.get("name", ""))
    prefix = f"{name}-{step}-"[: MAX_NAME - 5]  # the API server appends 5 characters
    approver: Body = {"username": who["username"]}
    if who.get("groups"):
        approver["groups"] = list(who["groups"])
    return {
        "apiVersion": "opscore.opspawn.io/v1alpha1",
        "kind": "Approval",
        "metadata": {
            "generateName": prefix,
            "ownerReferences": [
                {
                    "apiVersion": "opscore.opspawn.io/v1alpha1",
                    "kind": "Workflow",
                    "name": name,
                    "uid": meta.get("uid", ""),
                }
            ],
        },
        "spec": {
            "workflow": name,
            "step": step,
            "decision": decision,
            "reason": reason,
            "approver": approver,
        },
    }


def _check_step(cluster: Cluster, workflow: Body, step: str) -> None:
    name = (workflow.get("metadata") or {}).get("name", "")
    rows = {row.name: row for row in rows_of(cluster, workflow)}
    if step not in rows:
        known = ", ".join(rows) or "none yet"
        raise CliError(f'error: workflow "{name}" has no step "{step}" (steps: {known})')
    if not _gated(cluster, workflow, step):
        raise CliError(f'error: step "{step}" of workflow "{name}" has no approval gate')
    for entry in (workflow.get("status") or {}).get("steps") or []:
        record = entry.get("approval") or {}
        if entry.get("name") == step and record.get("decision"):
            by = record.get("decidedBy") or "onTimeout"
            raise CliError(
                f'error: step "{step}" of workflow "{name}" is already decided '
                f"({record['decision']} by {by}); a second decision changes nothing"
            )


def _gated(cluster: Cluster, workflow: Body, step: str) -> bool:
    spec = workflow.get("spec") or {}
    steps = spec.get("steps")
    if steps is None:
        template = cluster.template(str((spec.get("templateRef") or {}).get("name", "")))
        steps = ((template or {}).get("spec") or {}).get("steps") or []
    return any(s.get("name") == step and s.get("approval") for s in steps)
