"""The body of a Workflow status write: a JSON merge patch from the status read to the
status decided, fenced by the resourceVersion the decision was made from; and how to
tell, from the API server's copy, that a write whose answer was lost took effect."""

from __future__ import annotations

from typing import Any

from opscore_logic.engine import Decision


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning status `old` into `new` (removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def fenced_status_patch(
    body: dict[str, Any], old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """The status write, conditional on the version the decision was made from (the API
    server answers 409 when the object changed since). This is the fence of leader
    election: a replica deciding from a stale cache can never record, and so never send,
    a dispatch that another replica already decided. It also keeps a user's concurrent
    `spec.cancel` from being written over by a pass that had not seen it."""
    return {
        "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
        "status": status_patch(old, new),
    }


def holds_dispatches(
    current: dict[str, Any], written: dict[str, Any], decision: Decision | None
) -> bool:
    """Whether `current` (the API server's copy) holds the step entries of `decision`'s
    dispatches exactly as the status `written` had them. Each entry carries its task id,
    agent and `dispatchedAt` (that pass's clock), so only that write can have stored them."""
    if decision is None or not decision.dispatches:
        return False
    stored = {s.get("name"): s for s in (current.get("status") or {}).get("steps") or []}
    ours = {s.get("name"): s for s in written.get("steps") or []}
    return all(
        dispatch.step in ours and stored.get(dispatch.step) == ours[dispatch.step]
        for dispatch in decision.dispatches
    )
