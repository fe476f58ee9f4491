"""Steps in flight: what an agent's reports (or its silence, or the clock) mean for the
attempt running on it, and what follows a failed attempt (a retry later, or the end).
Part of the engine's pass (`opscore_logic.engine.reconcile`); no I/O."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from opscore_logic.attribution import AttemptUsage, attempt_usage
from opscore_logic.backoff import retry_delay
from opscore_logic.decision import Decision, EngineEvent, FailedDispatch, release
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
        used = settle_usage(entry, agent, dispatched)
        release(entry, "succeeded", agents, decision, outcome.reported_at, used)
        entry.phase = StepPhase.SUCCEEDED
        entry.finished_at = now
        entry.reason = StepReason.TASK_SUCCEEDED
        entry.message = outcome.message
        entry.output = capped_output(outcome.output, entry)
        return
    if outcome is not None:
        used = settle_usage(entry, agent, dispatched)
        release(entry, "failed", agents, decision, outcome.reported_at, used)
        failed = StepReason.TASK_FAILED
        attempt_failed(spec, status, entry, step, decision, now, failed, outcome.message)
        return
    if agent.offline:
        release(entry, "failed", agents, decision, usage=settle_usage(entry, agent, dispatched))
        message = f"agent {entry.agent} went offline (no heartbeat) during the task"
        attempt_failed(spec, status, entry, step, decision, now, StepReason.AGENT_OFFLINE, message)
        return
    if step.timeout_seconds is not None:
        deadline = dispatched + timedelta(seconds=step.timeout_seconds)
        if now >= deadline:
            used = settle_usage(entry, agent, dispatched)
            release(entry, "failed", agents, decision, usage=used)
            message = f"no result from agent {entry.agent} within {step.timeout_seconds}s"
            attempt_failed(spec, status, entry, step, decision, now, StepReason.TIMED_OUT, message)
            return
        decision.wake_at(deadline, now)


def settle_usage(entry: StepStatus, agent: AgentView, dispatched: datetime) -> AttemptUsage:
    """Add the ending attempt's usage to the step. Called once per attempt, in the pass
    that takes the step out of Running: the status write that records the end carries
    the usage, so a later pass (or another operator after a restart) never sees the
    attempt running again and never counts it twice; a report delivered twice is one
    report in the agent's deduplicated log."""
    assert entry.task_id is not None
    used = attempt_usage(
        agent.reports,
        task_id=entry.task_id,
        dispatched_at=dispatched,
        tasks_in_flight=agent.tasks_in_flight,
    )
    if used.attributed:
        attempt = used.attributed_total()
        entry.usage = attempt if entry.usage is None else entry.usage.plus(attempt)
    return used


DISPATCH_RETRY_SECONDS = 2.0


def requeue_undelivered(
    entry: StepStatus,
    failure: FailedDispatch,
    agents: dict[str, AgentView],
    decision: Decision,
    now: datetime,
) -> None:
    """AgentKit did not answer 202: back to the queue without spending a retry.

    A dispatch AgentKit may have taken (`maybe_delivered`) is sent again as the *same*
    attempt, so under the same task id and to the same agent when it is free (at least
    once, and a duplicate is one the agent can recognise); one it surely did not take
    runs again as the next attempt."""
    release(entry, "abandoned", agents, decision)
    entry.phase = StepPhase.PENDING
    entry.retry_at = now + timedelta(seconds=DISPATCH_RETRY_SECONDS)
    if failure.maybe_delivered:
        entry.attempt -= 1  # the next dispatch counts it again: the same attempt, same id
        reason = StepReason.DISPATCH_UNCONFIRMED
        entry.message = (
            f"AgentKit may have taken task {entry.task_id} (its answer was lost: "
            f"{failure.why}); sending it again under the same task id"
        )
    else:
        reason = StepReason.DISPATCH_FAILED
        entry.message = f"AgentKit did not take task {entry.task_id}: {failure.why}"
    entry.reason = reason
    decision.wake_at(entry.retry_at, now)
    decision.events.append(EngineEvent(reason.value, f"{entry.name}: {entry.message}", "Warning"))


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
