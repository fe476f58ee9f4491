"""Steps in flight: what an agent's reports (or its silence, or the clock) mean for the
attempt running on it, and what follows a failed attempt (a retry later, or the end).
Part of the engine's pass (`opscore_logic.engine.reconcile`); no I/O."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from opscore_logic.backoff import retry_delay
from opscore_logic.decision import Decision, EngineEvent, release
from opscore_logic.outcomes import infer_outcome
from opscore_logic.reasons import StepReason
from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import (
    RetryPolicy,
    Step,
    StepPhase,
    StepStatus,
    WorkflowSpec,
    WorkflowStatus,
)

MAX_OUTPUT_BYTES = 4096
NO_RETRIES = RetryPolicy()


def advance_running(
    spec: WorkflowSpec,
    status: WorkflowStatus,
    entry: StepStatus,
    step: Step,
    agents: dict[str, AgentView],
    decision: Decision,
    now: datetime,
) -> None:
    assert entry.task_id is not None
    assert entry.agent is not None
    agent = agents.get(entry.agent)
    dispatched = entry.dispatched_at or now
    if agent is None:
        release(entry, "abandoned", agents, decision)
        entry.phase = StepPhase.PENDING
        entry.reason = StepReason.AGENT_GONE
        entry.message = f"agent {entry.agent!r} was deleted; the step is requeued"
        decision.events.append(EngineEvent("StepRequeued", f"{step.name}: {entry.message}"))
        return
    outcome = infer_outcome(agent.reports, task_id=entry.task_id, dispatched_at=dispatched)
    if outcome is not None and outcome.succeeded:
        release(entry, "succeeded", agents, decision, outcome.reported_at)
        entry.phase = StepPhase.SUCCEEDED
        entry.finished_at = now
        entry.reason = StepReason.TASK_SUCCEEDED
        entry.message = outcome.message
        entry.output = capped_output(outcome.output, entry)
        return
    if outcome is not None:
        release(entry, "failed", agents, decision, outcome.reported_at)
        failed = StepReason.TASK_FAILED
        attempt_failed(spec, status, entry, step, decision, now, failed, outcome.message)
        return
    if agent.offline:
        release(entry, "failed", agents, decision)
        message = f"agent {entry.agent} went offline (no heartbeat) during the task"
        attempt_failed(spec, status, entry, step, decision, now, StepReason.AGENT_OFFLINE, message)
        return
    if step.timeout_seconds is not None:
        deadline = dispatched + timedelta(seconds=step.timeout_seconds)
        if now >= deadline:
            release(entry, "failed", agents, decision)
            message = f"no result from agent {entry.agent} within {step.timeout_seconds}s"
            attempt_failed(spec, status, entry, step, decision, now, StepReason.TIMED_OUT, message)
            return
        decision.wake_at(deadline, now)


DISPATCH_RETRY_SECONDS = 2.0


def requeue_undelivered(
    entry: StepStatus,
    why: str,
    agents: dict[str, AgentView],
    decision: Decision,
    now: datetime,
) -> None:
    release(entry, "abandoned", agents, decision)
    entry.phase = StepPhase.PENDING
    entry.reason = StepReason.DISPATCH_FAILED
    entry.message = f"AgentKit did not take task {entry.task_id}: {why}"
    entry.retry_at = now + timedelta(seconds=DISPATCH_RETRY_SECONDS)
    decision.wake_at(entry.retry_at, now)
    decision.events.append(
        EngineEvent("DispatchFailed", f"{entry.name}: {entry.message}", "Warning")
    )


def attempt_failed(
    spec: WorkflowSpec,
    status: WorkflowStatus,
    entry: StepStatus,
    step: Step,
    decision: Decision,
    now: datetime,
    reason: StepReason,
    message: str,
) -> None:
    policy = step.retries or NO_RETRIES
    budget_left = spec.retry_budget is None or status.retries_used < spec.retry_budget
    if entry.retries < policy.limit and budget_left:
        entry.retries += 1
        status.retries_used += 1
        delay = retry_delay(policy, entry.retries)
        entry.phase = StepPhase.PENDING
        entry.retry_at = now + timedelta(seconds=delay)
        entry.reason = reason
        entry.message = f"{message}; retry {entry.retries}/{policy.limit} in {delay:g}s"
        decision.events.append(
            EngineEvent("StepRetrying", f"{step.name}: {entry.message}", "Warning")
        )
        decision.wake_at(entry.retry_at, now)
        return
    entry.phase = StepPhase.FAILED
    entry.finished_at = now
    entry.reason = reason
    exhausted = "" if policy.limit == 0 else f" (after {entry.retries} retries)"
    if not budget_left and entry.retries < policy.limit:
        exhausted = " (workflow retry budget spent)"
    entry.message = message + exhausted
    decision.events.append(EngineEvent("StepFailed", f"{step.name}: {entry.message}", "Warning"))


def capped_output(output: dict[str, Any] | None, entry: StepStatus) -> dict[str, Any] | None:
    if output is None:
        return None
    size = len(json.dumps(output, separators=(",", ":")))
    if size <= MAX_OUTPUT_BYTES:
        return output
    entry.message = f"output of {size} bytes exceeds {MAX_OUTPUT_BYTES} bytes and was dropped"
    return {"truncated": True, "bytes": size}
