"""`suspend`, `resume`, `cancel`, `retry`: which spec change each one is, and when it is not.

The verbs are fields of `Workflow.spec` (see docs/architecture.md), so each command is a
JSON merge patch of the spec. What the plugin adds is the check a person would make first:
cancelling a run that already finished, or retrying one that did not fail, does nothing,
and saying so beats a silent no-op patch. `retry` sends the resourceVersion it read with
its patch: two retries racing would otherwise both read N and both write N+1, or one
would retry a run that started again in between; the API server refuses the stale one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VERBS = ("suspend", "resume", "cancel", "retry")
FINISHED = ("Succeeded", "Failed", "Cancelled")


class NotApplicable(Exception):
    """The verb does not apply to the workflow as it is; the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The merge patch to send, and the past tense to report (`suspended`)."""

    patch: dict[str, Any]
    done: str


def plan(verb: str, workflow: Mapping[str, Any]) -> Plan:
    """The patch for `verb` on `workflow`, or NotApplicable with a message for people."""
    meta = workflow.get("metadata") or {}
    spec = workflow.get("spec") or {}
    status = workflow.get("status") or {}
    name = meta.get("name", "")
    phase = status.get("phase")
    shown = f'workflow "{name}"'
    if verb != "retry" and phase in FINISHED:
        raise NotApplicable(f"{shown} already finished ({phase}); nothing to {verb}")
    if verb == "suspend":
        if spec.get("cancel"):
            raise NotApplicable(f"{shown} is being cancelled; nothing to suspend")
        if spec.get("suspend"):
            raise NotApplicable(f"{shown} is already suspended")
        return Plan({"spec": {"suspend": True}}, "suspended")
    if verb == "resume":
        if not spec.get("suspend"):
            raise NotApplicable(f"{shown} is not suspended; nothing to resume")
        return Plan({"spec": {"suspend": False}}, "resumed")
    if verb == "cancel":
        if spec.get("cancel"):
            raise NotApplicable(f"{shown} is already being cancelled")
        return Plan({"spec": {"cancel": True}}, "cancelled")
    if verb == "retry":
        wanted = int(spec.get("retryGeneration") or 0)
        if wanted > int(status.get("retryGeneration") or 0):
            raise NotApplicable(f"a retry of {shown} is already requested")
        if phase != "Failed":
            raise NotApplicable(
                f"{shown} is {phase or 'Pending'}, not Failed; only a failed run can be retried"
            )
        patch = {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "spec": {"retryGeneration": wanted + 1},
        }
        return Plan(patch, f"retried (retryGeneration {wanted + 1})")
    raise ValueError(f"unknown verb {verb!r}")
