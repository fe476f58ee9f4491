"""When things happened, from the simulator's ledger (each task's `received_epoch` and
`final_report_acked_epoch`) and the workflows' final status (`dispatchedAt`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def first_task_after(tasks: list[dict[str, Any]], moment: float) -> float | None:
    """When the agents received the first task after `moment` (epoch seconds)."""
    return min((t["received_epoch"] for t in tasks if t["received_epoch"] > moment), default=None)


def first_ack_after(tasks: list[dict[str, Any]], moment: float) -> float | None:
    """When the sidecar first accepted a task's final report after `moment`."""
    acks = [t.get("final_report_acked_epoch") for t in tasks]
    return min((a for a in acks if a is not None and a > moment), default=None)


def delivery_lags(final: dict[str, dict[str, Any]], tasks: list[dict[str, Any]]) -> list[float]:
    """Per step: from the decision to dispatch (`dispatchedAt`, taken before the status
    write) to the agent receiving the task. The window in which a crash leaves a task id
    in status whose task may not have left lies inside it."""
    received = {t["opscore_task_id"]: t["received_epoch"] for t in tasks if t["opscore_task_id"]}
    lags = []
    for body in final.values():
        for step in (body.get("status") or {}).get("steps") or []:
            task_id, at = step.get("taskId"), step.get("dispatchedAt")
            if task_id in received and at:
                decided = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
                lags.append(received[task_id] - decided)
    return lags


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
