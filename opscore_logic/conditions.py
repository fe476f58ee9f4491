"""Kubernetes-style conditions (KEP-1623) and the one rule for updating them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from opscore_logic.base import WireModel

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(WireModel):
    """One observed aspect of the object, as `kubectl wait --for=condition=...` reads it."""

    type: str = Field(description="Condition type in CamelCase, e.g. `Succeeded`, `Ready`.")
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown`.")
    reason: str = Field(description="One CamelCase word saying why, for machines.")
    message: str = Field(default="", description="A sentence for humans.")
    last_transition_time: datetime = Field(
        description="When `status` last changed (not when the condition was last written)."
    )
    observed_generation: int | None = Field(
        default=None, description="The `metadata.generation` this condition was computed from."
    )


def set_condition(
    conditions: list[Condition],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Return `conditions` with `type` set; `lastTransitionTime` moves only when status does."""
    out: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.type != type:
            out.append(cond)
            continue
        found = True
        since = cond.last_transition_time if cond.status == status else now
        out.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    if not found:
        out.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return out


def get_condition(conditions: list[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)
