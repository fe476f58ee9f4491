"""Approval gates: who may let a gated step dispatch, and what the Approvals on it decide.

A step with `approval` does not dispatch when ready; it waits until an Approval resource
(created by the approver, whose recorded identity the API server's admission policy has
already checked against `request.userInfo`) decides it. This module is the pure part:
the gate's wire model, whether an approver is on the gate's list, and what a set of
Approvals plus the clock decide. No I/O, so the engine and the tests share one rule.

Rules, and why:
- The first *admissible* decision wins (ordered by creation time, then name for ties);
  later ones change nothing but are reported as ignored so status can record them. A
  decision from someone not on the list is refused, with a reason, and does not count:
  otherwise one unlisted click could block the listed approvers.
- An Approval created before the step became ready counts once the step is ready: the
  decision is about the step, not about the moment.
- With `timeoutSeconds`, a gate still undecided when it runs out takes `onTimeout`
  (Reject by default: silence is not consent). Until then, `wake_at` tells the engine
  when to look again, so no one sleeps on a fixed interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import ConfigDict, Field

from opscore_logic.base import WireModel


class Decision(StrEnum):
    APPROVE = "Approve"
    REJECT = "Reject"


class ApprovalGate(WireModel):
    """`steps[].approval`: the step waits for a listed user or group member to decide."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # Either list may be absent from the stored object (no schema default).
                    "rule": (
                        "(has(self.users) ? size(self.users) : 0)"
                        " + (has(self.groups) ? size(self.groups) : 0) > 0"
                    ),
                    "message": "name at least one user or group who may approve",
                }
            ]
        }
    )

    users: list[str] = Field(default_factory=list, description="Usernames who may decide.")
    groups: list[str] = Field(
        default_factory=list, description="Members of these groups may decide."
    )
    message: str = Field(default="", description="Shown to the approver while the step waits.")
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="Undecided this long after the step is ready: onTimeout."
    )
    on_timeout: Decision = Field(
        default=Decision.REJECT, description="What an undecided gate decides when it times out."
    )


@dataclass(frozen=True, kw_only=True)
class Approver:
    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ApprovalRecord:
    """One Approval resource for this step, as the operator's cache holds it."""

    name: str
    created: datetime
    decision: Decision
    approver: Approver
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class GateVerdict:
    """What the gate says now. `decided` is None while it waits (then `wake_at` may be set)."""

    decided: Decision | None
    by: ApprovalRecord | None = None
    timed_out: bool = False
    wake_at: datetime | None = None
    refused: tuple[tuple[ApprovalRecord, str], ...] = field(default=())
    ignored: tuple[ApprovalRecord, ...] = field(default=())


def who_may_approve(gate: ApprovalGate) -> str:
    """The phrase for the step's message and Event, e.g. `users alice; groups sre`."""
    parts = []
    if gate.users:
        parts.append("users " + ", ".join(gate.users))
    if gate.groups:
        parts.append("groups " + ", ".join(gate.groups))
    return "; ".join(parts)


def refusal(gate: ApprovalGate, approver: Approver) -> str | None:
    """Why `approver` may not decide this gate (for the step's status), or None if they may."""
    if approver.username in gate.users or set(approver.groups) & set(gate.groups):
        return None
    return f"{approver.username} is not among those who may approve ({who_may_approve(gate)})"


def judge(
    gate: ApprovalGate,
    records: list[ApprovalRecord],
    *,
    ready_since: datetime,
    now: datetime,
) -> GateVerdict:
    """Decide a ready gate from its Approvals and the clock; see the module rules."""
    refused: list[tuple[ApprovalRecord, str]] = []
    admissible: list[ApprovalRecord] = []
    for record in sorted(records, key=lambda r: (r.created, r.name)):
        why = refusal(gate, record.approver)
        if why is None:
            admissible.append(record)
        else:
            refused.append((record, why))
    if admissible:
        first, *later = admissible
        return GateVerdict(
            decided=first.decision, by=first, refused=tuple(refused), ignored=tuple(later)
        )
    if gate.timeout_seconds is None:
        return GateVerdict(decided=None, refused=tuple(refused))
    deadline = ready_since + timedelta(seconds=gate.timeout_seconds)
    if now >= deadline:
        return GateVerdict(decided=gate.on_timeout, timed_out=True, refused=tuple(refused))
    return GateVerdict(decided=None, wake_at=deadline, refused=tuple(refused))
