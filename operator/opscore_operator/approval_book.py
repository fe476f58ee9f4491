"""The Approvals the operator has seen, indexed by the Workflow they decide.

Approvals are watched like the other kinds (one watch stream; no request per pass), so
a gated step's pass reads its decisions from memory. An Approval arriving wakes its
Workflow (`Runtime.on_approval`); one created before its step is ready simply waits
here until the step's pass asks for it.

An Approval owned by a Workflow (the plugin sets the ownerReference) counts only for the
run with that uid: a run deleted and created again under the same name does not inherit
the old run's decisions while the garbage collector has not yet deleted them.

What an Approval says about its approver has already been checked by the API server's
admission policy (deploy/approvals/approval-policy.yaml); whether that approver may
decide the step is the engine's question (`opscore_logic.gating`). An Approval this
version cannot read (the CRD schema makes that unlikely: a newer version's fields are
ignored) is logged and left out: it decides nothing, and crashes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from opscore_logic.approval import ApprovalRecord, Approver
from opscore_logic.approval_model import ApprovalSpec
from opscore_logic.base import parse_time
from opscore_operator.store import Key, key_of

logger = logging.getLogger("opscore.approvals")

StepApprovals = dict[str, list[ApprovalRecord]]  # step name -> its Approvals


class ApprovalBook:
    def __init__(self) -> None:
        # (namespace, workflow) -> Approval name -> (step, owning run's uid or "", record)
        self._by_workflow: dict[Key, dict[str, tuple[str, str, ApprovalRecord]]] = {}
        self._workflow_of: dict[Key, Key] = {}  # Approval key -> the workflow it decides

    def __len__(self) -> int:
        return len(self._workflow_of)

    def keys(self) -> list[Key]:
        """The Approvals held, by (namespace, name)."""
        return list(self._workflow_of)

    def note(self, event_type: str | None, body: dict[str, Any]) -> Key | None:
        """Take in a watch event; returns the Workflow it concerns (to wake), if any."""
        key = key_of(body)
        if event_type == "DELETED":
            return self._drop(key)
        parsed = _record(body)
        if parsed is None:
            self._drop(key)
            return None
        step, workflow, record = parsed
        self._drop(key)
        self._workflow_of[key] = workflow
        self._by_workflow.setdefault(workflow, {})[key[1]] = (step, _owner_uid(body), record)
        return workflow

    def for_workflow(self, workflow: Key, uid: str) -> StepApprovals:
        """The Approvals on each step of the run `workflow` with `uid` (empty when none):
        those owned by another run of the same name are left out."""
        out: StepApprovals = {}
        for step, owner, record in (self._by_workflow.get(workflow) or {}).values():
            if not owner or owner == uid:
                out.setdefault(step, []).append(record)
        return out

    def _drop(self, key: Key) -> Key | None:
        workflow = self._workflow_of.pop(key, None)
        if workflow is None:
            return None
        entries = self._by_workflow.get(workflow, {})
        entries.pop(key[1], None)
        if not entries:
            self._by_workflow.pop(workflow, None)
        return workflow


def _owner_uid(body: dict[str, Any]) -> str:
    for owner in (body.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("kind") == "Workflow" and owner.get("uid"):
            return str(owner["uid"])
    return ""


def _record(body: dict[str, Any]) -> tuple[str, Key, ApprovalRecord] | None:
    meta = body.get("metadata") or {}
    namespace, name = key_of(body)
    created = parse_time(meta.get("creationTimestamp"))
    try:
        spec = ApprovalSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        logger.warning("approval %s/%s unreadable, ignored: %s", namespace, name, exc)
        return None
    if created is None:
        logger.warning("approval %s/%s has no creationTimestamp, ignored", namespace, name)
        return None
    record = ApprovalRecord(
        name=name,
        created=created,
        decision=spec.decision,
        approver=Approver(username=spec.approver.username, groups=tuple(spec.approver.groups)),
        reason=spec.reason,
    )
    return spec.step, (namespace, spec.workflow), record
