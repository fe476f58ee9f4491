"""Counting outcomes: what the API server says each workflow came to, and what the
simulated agents say they received (every task, by `opscore_task_id`).

- **lost**: never reached a final phase before the scenario's deadline.
- **duplicated**: a task id an agent received more than once (the same attempt delivered
  twice: what status-first dispatch exists to prevent).
- **redispatched steps**: steps agents received under more than one task id, i.e. a retry
  after a timeout or a lost report. Legitimate, and the price of recovering without
  reports; a step in a *doomed* workflow (retried because it failed) is not counted.
- **unexpected**: a workflow that ended otherwise than planned, or failed for a reason the
  scenario does not explain.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from opscore_testbed.chaos.workload import FAILED, SUCCEEDED, Planned

#: Why a doomed step may end, by default: the agent reported the error.
TASK_FAILED = frozenset({"TaskFailed"})


@dataclass
class Tally:
    workflows: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_as_expected: int = 0
    unexpected: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    redispatched_steps: int = 0
    tasks_received: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "workflows": self.workflows,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_as_expected": self.failed_as_expected,
            "unexpected": len(self.unexpected),
            "lost": len(self.lost),
            "duplicated": sum(count - 1 for count in self.duplicated.values()),
            "redispatched_steps": self.redispatched_steps,
            "tasks_received": self.tasks_received,
        }


def judge(
    planned: Planned, final: dict[str, Any], failure_reasons: frozenset[str] = TASK_FAILED
) -> str | None:
    """None when the workflow ended as planned, else what is wrong with it."""
    status = final.get("status") or {}
    phase = status.get("phase")
    if phase != planned.expect:
        return f"{planned.name}: {phase} ({status.get('message')}), expected {planned.expect}"
    if planned.expect == SUCCEEDED:
        return None
    failed_steps = [s for s in status.get("steps") or [] if s.get("phase") == FAILED]
    reasons = {s.get("reason") for s in failed_steps}
    if not failed_steps or not reasons <= failure_reasons:
        return f"{planned.name}: failed with step reasons {sorted(map(str, reasons))}"
    return None


def tally(
    planned: list[Planned],
    final: dict[str, dict[str, Any]],
    sim_tasks: dict[str, Any],
    *,
    failure_reasons: frozenset[str] = TASK_FAILED,
) -> Tally:
    result = Tally(workflows=len(planned))
    for item in planned:
        body = final.get(item.name)
        if body is None:
            result.lost.append(item.name)
            continue
        phase = (body.get("status") or {}).get("phase")
        if phase == SUCCEEDED:
            result.succeeded += 1
        elif phase == FAILED:
            result.failed += 1
        problem = judge(item, body, failure_reasons)
        if problem is None:
            result.failed_as_expected += phase == FAILED
        else:
            result.unexpected.append(problem)
    result.duplicated = {
        task_id: count for task_id, count in sim_tasks["by_task_id"].items() if count > 1
    }
    result.tasks_received = int(sim_tasks.get("total", 0))
    result.redispatched_steps = redispatched_steps(
        sim_tasks.get("tasks", []), {p.name for p in planned if p.shape == "doomed"}
    )
    return result


def redispatched_steps(tasks: list[dict[str, Any]], excluded: set[str]) -> int:
    """Steps received under more than one task id (workflows in `excluded` left out)."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for task in tasks:
        payload = task.get("payload") or {}
        workflow = str(payload.get("workflow", "")).rpartition("/")[2]
        if workflow in excluded or task.get("opscore_task_id") is None:
            continue
        ids[(workflow, str(payload.get("step")))].add(task["opscore_task_id"])
    return sum(1 for seen in ids.values() if len(seen) > 1)
