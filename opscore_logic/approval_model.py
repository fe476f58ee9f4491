"""The Approval resource (one person's decision on one gated step) and the record of a
gate in a step's status.

An Approval is created by the approver (`kubectl opscore approve`), never by the
operator. Its `spec.approver` is what the creator claims to be; the admission policy in
`deploy/base/approval-policy.yaml` refuses it unless the claim equals the identity the API
server authenticated (`request.userInfo`), so by the time the operator reads it the name
is vouched for. The spec is immutable (here and in that policy): a decision is a fact,
not a setting. The operator then checks the approver against the step's list
(`opscore_logic.approval`) and records the outcome in the step's `approval` status.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from opscore_logic.approval import Decision
from opscore_logic.base import WireModel

MAX_REFUSALS = 5  # a step's status keeps the first few refused decisions, not an unbounded list


class ApproverIdentity(WireModel):
    """Who decided, as the API server authenticated them (the admission policy checks it)."""

    username: str = Field(min_length=1, max_length=253, description="`request.userInfo.username`.")
    groups: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Groups claimed; each must be one of `request.userInfo.groups`.",
    )


class ApprovalSpec(WireModel):
    """One decision on one gated step of one Workflow in the same namespace (immutable)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "a decision cannot be changed"}
            ]
        }
    )

    workflow: str = Field(min_length=1, max_length=253, description="The Workflow's name.")
    step: str = Field(min_length=1, max_length=63, description="The gated step's name.")
    decision: Decision = Field(description="`Approve` or `Reject`.")
    reason: str = Field(default="", max_length=1024, description="Why, for the record.")
    approver: ApproverIdentity = Field(description="Who decides (checked by the API server).")


class GateRefusal(WireModel):
    """A decision that did not count, and why."""

    approval: str = Field(description="The Approval's name.")
    username: str = Field(description="Who made it.")
    why: str = Field(description="Why it does not count.")


class StepApproval(WireModel):
    """`status.steps[].approval`: the gate of a step, from first ready to decided."""

    requested_at: datetime = Field(description="When the step became ready and began to wait.")
    decision: Decision | None = Field(
        default=None, description="`Approve` or `Reject` once decided; unset while waiting."
    )
    decided_by: str | None = Field(
        default=None, description="The approver's username (unset when the gate timed out)."
    )
    decided_at: datetime | None = Field(default=None, description="When the operator decided.")
    reason: str | None = Field(default=None, description="The approver's reason.")
    approval: str | None = Field(default=None, description="The deciding Approval's name.")
    timed_out: bool = Field(
        default=False, description="Decided by `onTimeout`, nobody having decided in time."
    )
    refused: list[GateRefusal] = Field(
        default_factory=list,
        max_length=MAX_REFUSALS,
        description=f"Decisions that did not count (not on the list); at most {MAX_REFUSALS}.",
    )
