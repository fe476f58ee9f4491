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
- **unconfirmed successes**: a `Succeeded` workflow one of whose steps' final task id no
  agent ever received: the operator's status alone is not taken as proof of success.
- **unaccounted tasks**: a task id an agent received that no finished workflow's status
  accounts for (the step has no such attempt): work nobody asked for.
- **deliveries without task id**: a delivery whose `opscore_task_id` is not a string.
- **undelivered attempts**: attempts the statuses count (`attempt`) that no agent received:
  AgentKit refused them (F4), or the operator died between writing and sending (the crash
  window). Counted; promised 0 where neither can happen.
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
    tasks_expected: int = 0
    undelivered_attempts: int = 0
    unconfirmed_successes: list[str] = field(default_factory=list)
    unaccounted_tasks: list[str] = field(default_factory=list)
    deliveries_without_task_id: int = 0

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
            "tasks_expected": self.tasks_expected,
            "undelivered_attempts": self.undelivered_attempts,
            "unconfirmed_successes": len(self.unconfirmed_successes),
            "unaccounted_tasks": len(self.unaccounted_tasks),
            "deliveries_without_task_id": self.deliveries_without_task_id,
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
    tasks = sim_tasks.get("tasks", [])
    result.redispatched_steps = redispatched_steps(
        tasks, {p.name for p in planned if p.shape == "doomed"}
    )
    check_against_ledger(result, {p.name for p in planned} - set(result.lost), final, tasks)
    return result


def _workflow_of(task: dict[str, Any]) -> str:
    payload = task.get("payload") or {}
    return str(payload.get("workflow", "")).rpartition("/")[2]


def _parse_task_id(task_id: str) -> tuple[str, str, int, int] | None:
    """`<workflow uid>:<step>:<retryGeneration>:<attempt>`, or None for anything else."""
    parts = task_id.rsplit(":", 3)
    if len(parts) != 4 or not (parts[2].isdigit() and parts[3].isdigit()):
        return None
    return parts[0], parts[1], int(parts[2]), int(parts[3])


def _accounts_for(body: dict[str, Any], task_id: str) -> bool:
    """True when `body`'s status has the attempt `task_id` names (same workflow uid, a
    step of that name that made at least that many attempts in that retry generation, or
    an earlier generation)."""
    parsed = _parse_task_id(task_id)
    if parsed is None:
        return False
    uid, step, generation, attempt = parsed
    status = body.get("status") or {}
    if uid != (body.get("metadata") or {}).get("uid"):
        return False
    current = int(status.get("retryGeneration") or 0)
    for entry in status.get("steps") or []:
        if entry.get("name") == step:
            return generation < current or (
                generation == current and 1 <= attempt <= int(entry.get("attempt") or 0)
            )
    return False


def check_against_ledger(
    result: Tally,
    finished: set[str],
    final: dict[str, dict[str, Any]],
    tasks: list[dict[str, Any]],
) -> None:
    """Hold the operator's statuses (of the workflows in `finished`) against what the agents
    received: success needs the final attempt delivered, every delivery needs a status
    that asked for it, and the attempts the statuses count should all have arrived."""
    received: dict[str, set[str]] = defaultdict(set)
    for task in tasks:
        task_id = task.get("opscore_task_id")
        if not isinstance(task_id, str):
            result.deliveries_without_task_id += 1
            continue
        received[_workflow_of(task)].add(task_id)
    for name in sorted(finished):
        body = final[name]
        status = body.get("status") or {}
        steps = status.get("steps") or []
        generation = int(status.get("retryGeneration") or 0)
        ids = received.get(name, set())
        accounted = {task_id for task_id in ids if _accounts_for(body, task_id)}
        result.unaccounted_tasks.extend(sorted(ids - accounted))
        attempts = sum(int(entry.get("attempt") or 0) for entry in steps)
        this_generation = sum(
            1 for t in accounted if (parsed := _parse_task_id(t)) and parsed[2] == generation
        )
        result.tasks_expected += attempts
        result.undelivered_attempts += attempts - this_generation
        if status.get("phase") == SUCCEEDED:
            missing = [str(e.get("name")) for e in steps if e.get("taskId") not in ids]
            if missing or not steps:
                result.unconfirmed_successes.append(f"{name}: no delivery of {missing or 'any'}")


def predicted_duplicates(duplicated: dict[str, int], allowed: set[str]) -> int:
    """How many of the extra deliveries in `duplicated` (task id -> times received) are
    of task ids in `allowed`: the ones a scenario knows may be sent twice (a dispatch
    whose answer was lost). `report.problems` fails a row with more duplicates than this."""
    return sum(count - 1 for task_id, count in duplicated.items() if task_id in allowed)


def redispatched_steps(tasks: list[dict[str, Any]], excluded: set[str]) -> int:
    """Steps received under more than one task id (workflows in `excluded` left out)."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for task in tasks:
        payload = task.get("payload") or {}
        workflow = _workflow_of(task)
        if workflow in excluded or task.get("opscore_task_id") is None:
            continue
        ids[(workflow, str(payload.get("step")))].add(task["opscore_task_id"])
    return sum(1 for seen in ids.values() if len(seen) > 1)
