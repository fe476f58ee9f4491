"""The body of a Workflow status write: a JSON merge patch from the status read to the
status decided, fenced by the resourceVersion the decision was made from."""

from __future__ import annotations

from typing import Any


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
