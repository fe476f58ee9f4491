"""The workflow engine: one pure function from what is observed to what to do next.

`reconcile` takes a Workflow (spec, status, resolved steps), the agents as the operator
sees them and the time, and returns the new status plus the actions to perform
(dispatches, released tasks, events, when to look again). It performs no I/O, so every
decision can be tested exhaustively; the kopf adapter around it is thin.

Events are for humans and cost an API write each: one per failure or retry (Warnings)
and one for the outcome; the routine ones (a dispatch, the run starting) are marked
`progress` and the operator posts them only when asked to. A step's success is told by
status.

What happens when an agent reports idle: the sidecar stores the report in the Agent's
status, the operator re-runs `reconcile` for the workflows with a task on that agent, and
`running.advance_running` sees the outcome (via `infer_outcome`), marks the step
Succeeded, and the same pass dispatches whatever became ready (`_start_ready`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from opscore_logic.approval import ApprovalRecord
from opscore_logic.budget import Budget, OnExceeded
from opscore_logic.conditions import set_condition
from opscore_logic.decision import (
    Decision,
    Dispatch,
    EngineEvent,
    FailedDispatch,
    Release,
    WorkflowRef,
    release,
    task_id_for,
)
from opscore_logic.gating import admit, set_gate_condition
from opscore_logic.graph import dependencies, graph_problems, topological_order
from opscore_logic.reasons import StepReason, WorkflowReason
from opscore_logic.running import (
    DISPATCH_RETRY_SECONDS,
    MAX_OUTPUT_BYTES,
    advance_running,
    requeue_undelivered,
)
from opscore_logic.selection import (
    AgentView,
    queued_message,
    select_agent,
    step_fits,
    why_no_agent,
)
from opscore_logic.spending import account_run
from opscore_logic.templating import Scope, TemplateError, evaluate_condition, render
from opscore_logic.workflow_model import (
    Step,
    StepPhase,
    StepStatus,
    WorkflowPhase,
    WorkflowSpec,
    WorkflowStatus,
)

# The engine's vocabulary lives in `decision`, the handling of running steps in `running`;
# callers import them from here.
__all__ = [
    "DISPATCH_RETRY_SECONDS",
    "MAX_OUTPUT_BYTES",
    "Decision",
    "Dispatch",
    "EngineEvent",
    "FailedDispatch",
    "Release",
    "WorkflowRef",
    "reconcile",
    "task_id_for",
]


def reconcile(
    *,
    ref: WorkflowRef,
    spec: WorkflowSpec,
    status: WorkflowStatus,
    steps: Sequence[Step] | None,
    agents: Mapping[str, AgentView],
    now: datetime,
    inputs: Mapping[str, Any] | None = None,
    resolve_error: str | None = None,
    failed_dispatches: Mapping[str, FailedDispatch] | None = None,
    count_fitting: Callable[[Step], int] | None = None,
    default_budget: Budget | None = None,
    approvals: Mapping[str, Sequence[ApprovalRecord]] | None = None,
) -> Decision:
    """Decide the next status and actions for one workflow (see module docstring).

    `inputs` are the effective inputs (template defaults merged), `spec.inputs` if None.
    `failed_dispatches` maps task ids AgentKit did not accept to why: those attempts go
    back to the queue without spending a retry, to be sent again under the same task id
    when AgentKit may have taken them (`maybe_delivered`), as a new attempt otherwise.

    `agents` holds at least the agents named in `status` and, for each step, the ones it
    could be given now (free, fitting) that come first in `select_agent`'s order, as many
    as there are steps; at scale the operator passes just those. `count_fitting` then
    says how many agents of all fit a step (for a queued step's message); when None they
    are counted in `agents`. `default_budget` applies when `spec.budget` is unset (the
    WorkflowTemplate's); see `opscore_logic.budget` for what an exceeded budget does.
    `approvals` maps step names to the Approvals on them (`opscore_logic.gating`).
    """
    status = status.model_copy(deep=True)
    decision = Decision(status=status)
    old_phase = status.phase
    if old_phase is None:
        status.retry_generation = spec.retry_generation  # a new run is not a retry
    if spec.retry_generation > status.retry_generation:
        # A retry request: act on it once (`status.retryGeneration` never goes down, so
        # the generation in task ids never repeats). A finished run is retried only if it
        # failed; a running one retries the steps that have failed so far.
        if old_phase in (WorkflowPhase.SUCCEEDED, WorkflowPhase.CANCELLED):
            status.retry_generation = spec.retry_generation
        elif _reset_failed(status, spec.retry_generation, now):
            decision.events.append(EngineEvent("RetryRequested", "retrying the failed steps"))

    if status.phase is not None and status.phase.finished:
        _finish_ttl(spec, status, decision, now)
        status.observed_generation = ref.generation
        return decision

    problems = [resolve_error] if resolve_error else graph_problems(steps or [])
    if problems or steps is None:
        message = "; ".join(p for p in problems if p) or "the workflow has no steps"
        _fail_invalid(ref, spec, status, decision, message, now)
        return _finalise(ref, status, decision, old_phase, now)

    # The agents as this pass sees them: a dispatch takes a slot, a release gives it back
    # (as the operator's ledger will), so what one pass frees the same pass can use.
    free = dict(agents)
    _sync_step_entries(status, steps, free, decision)
    if status.start_time is None:
        status.start_time = now
    by_name = {s.name: s for s in steps}
    entries = {e.name: e for e in status.steps}

    if spec.cancel:
        message = "cancelled by spec.cancel"
        _cancel_all(status, decision, now, reason=StepReason.CANCELLED, message=message)
        forced = (WorkflowPhase.CANCELLED, WorkflowReason.CANCELLED, message)
        _conclude(ref, spec, status, decision, steps, now, forced=forced)
        return _finalise(ref, status, decision, old_phase, now)

    if spec.deadline_seconds is not None:
        deadline = status.start_time + timedelta(seconds=spec.deadline_seconds)
        if now >= deadline:
            message = f"workflow deadline of {spec.deadline_seconds}s passed"
            exceeded = StepReason.DEADLINE_EXCEEDED
            _cancel_all(status, decision, now, reason=exceeded, message=message, failed=True)
            forced = (WorkflowPhase.FAILED, WorkflowReason.TIMED_OUT, message)
            _conclude(ref, spec, status, decision, steps, now, forced=forced)
            return _finalise(ref, status, decision, old_phase, now)
        decision.wake_at(deadline, now)

    failed = failed_dispatches or {}
    for entry in status.steps:
        if entry.phase is not StepPhase.RUNNING:
            continue
        failure = failed.get(entry.task_id or "")
        if failure is not None:
            requeue_undelivered(entry, failure, free, decision, now)
        else:
            advance_running(spec, status, entry, by_name[entry.name], free, decision, now)

    budget = spec.budget or default_budget
    over = account_run(budget, status, decision)
    suspended_by_budget: str | None = None
    if over is not None and budget is not None:
        message = f"budget exceeded: {over}"
        if budget.on_exceeded is OnExceeded.SUSPEND:
            spec = spec.model_copy(update={"suspend": True})  # what spec.suspend does
            suspended_by_budget = f"{message}; raise or remove spec.budget to resume"
        elif not any(e.phase is StepPhase.RUNNING for e in status.steps):
            exceeded = StepReason.BUDGET_EXCEEDED
            _cancel_all(status, decision, now, reason=exceeded, message=message)
            forced = (WorkflowPhase.FAILED, WorkflowReason.BUDGET_EXCEEDED, message)
            _conclude(ref, spec, status, decision, steps, now, forced=forced)
            return _finalise(ref, status, decision, old_phase, now)
        else:  # the running steps finish (their usage still counts), nothing new starts
            _conclude(ref, spec, status, decision, steps, now)
            status.message = f"{message}; waiting for the running steps to finish"
            return _finalise(ref, status, decision, old_phase, now)
    scope_inputs = dict(spec.inputs if inputs is None else inputs)
    gates = approvals or {}
    _start_ready(
        ref, spec, scope_inputs, status, steps, entries, free, decision, now, count_fitting, gates
    )
    _conclude(ref, spec, status, decision, steps, now)
    if suspended_by_budget is not None and status.phase is WorkflowPhase.SUSPENDED:
        status.message = suspended_by_budget
    return _finalise(ref, status, decision, old_phase, now)


# -- starting steps ------------------------------------------------------------------------


def _start_ready(
    ref: WorkflowRef,
    spec: WorkflowSpec,
    inputs: Mapping[str, Any],
    status: WorkflowStatus,
    steps: Sequence[Step],
    entries: Mapping[str, StepStatus],
    agents: dict[str, AgentView],
    decision: Decision,
    now: datetime,
    count_fitting: Callable[[Step], int] | None = None,
    approvals: Mapping[str, Sequence[ApprovalRecord]] | None = None,
) -> None:
    deps = dependencies(steps)
    # Dependencies first (so a skip or failure reaches all dependents in this pass), then
    # list order: earlier steps get agents first.
    for step in topological_order(steps):
        entry = entries[step.name]
        if entry.phase not in (StepPhase.PENDING, StepPhase.QUEUED, StepPhase.WAITING_FOR_APPROVAL):
            continue
        blocked = _blocked_by(deps[step.name], entries, steps)
        if blocked is not None:
            entry.phase = StepPhase.SKIPPED
            entry.reason = StepReason.UPSTREAM_FAILED
            entry.message = f"not run: step {blocked!r} did not succeed"
            entry.finished_at = now
            continue
        if not all(_satisfied(entries[d], steps) for d in deps[step.name]):
            continue
        scope = _scope(inputs, steps, entries, ref)
        if step.when:
            try:
                run = evaluate_condition(step.when, scope)
            except TemplateError as exc:
                _step_invalid(entry, decision, now, f"when: {exc}")
                continue
            if not run:
                entry.phase = StepPhase.SKIPPED
                entry.reason = StepReason.WHEN_FALSE
                entry.message = f"skipped: {step.when!r} is false"
                entry.finished_at = now
                continue
        try:
            parameters = render(step.parameters, scope)
        except TemplateError as exc:
            _step_invalid(entry, decision, now, f"parameters: {exc}")
            continue
        if entry.retry_at is not None and entry.retry_at > now:
            decision.wake_at(entry.retry_at, now)
            continue
        if not admit(step, entry, (approvals or {}).get(step.name, ()), decision, now):
            continue
        if spec.suspend:
            entry.phase = StepPhase.PENDING
            entry.reason = StepReason.SUSPENDED
            entry.message = "workflow suspended"
            continue
        agent = _same_agent_again(step, entry, agents) or select_agent(step, agents.values())
        if agent is None:
            message = (
                why_no_agent(step, agents.values())
                if count_fitting is None
                else queued_message(step, count_fitting(step))
            )
            entry.phase = StepPhase.QUEUED
            entry.reason = StepReason.NO_AGENT_AVAILABLE
            entry.message = message
            continue
        agents[agent.name] = replace(agent, free_slots=agent.free_slots - 1, last_dispatch_at=now)
        entry.attempt += 1
        entry.phase = StepPhase.RUNNING
        entry.agent = agent.name
        entry.task_id = task_id_for(ref, step.name, status.retry_generation, entry.attempt)
        entry.dispatched_at = now
        entry.started_at = entry.started_at or now
        entry.retry_at = None
        entry.reason = StepReason.DISPATCHED
        entry.message = f"attempt {entry.attempt} on agent {agent.name}"
        decision.dispatches.append(
            Dispatch(
                step=step.name,
                agent=agent.name,
                agent_id=agent.agent_id,
                task_id=entry.task_id,
                task_name=step.task or step.name,
                parameters=parameters,
                attempt=entry.attempt,
            )
        )
        decision.events.append(
            EngineEvent(
                "StepDispatched",
                f"{step.name} -> agent {agent.name} ({entry.task_id})",
                progress=True,
            )
        )
        if step.timeout_seconds is not None:
            decision.wake_at(now + timedelta(seconds=step.timeout_seconds), now)


def _same_agent_again(
    step: Step, entry: StepStatus, agents: Mapping[str, AgentView]
) -> AgentView | None:
    """For an attempt sent again under the same task id (AgentKit may have taken it): the
    agent it went to, if that one can take it now, so an agent that keeps the ids it has
    seen gets the duplicate rather than a second agent. Otherwise None (any agent)."""
    if entry.reason is not StepReason.DISPATCH_UNCONFIRMED or entry.agent is None:
        return None
    view = agents.get(entry.agent)
    if view is None or not view.ready or view.free_slots <= 0 or not step_fits(step, view):
        return None
    return view


def _satisfied(dep: StepStatus, steps: Sequence[Step]) -> bool:
    if dep.phase is StepPhase.SUCCEEDED:
        return True
    if dep.phase is StepPhase.SKIPPED and dep.reason is StepReason.WHEN_FALSE:
        return True
    return dep.phase is StepPhase.FAILED and _continues(dep.name, steps)


def _blocked_by(
    deps: Sequence[str], entries: Mapping[str, StepStatus], steps: Sequence[Step]
) -> str | None:
    for name in deps:
        dep = entries[name]
        if dep.phase.finished and not _satisfied(dep, steps):
            return name
    return None


def _continues(name: str, steps: Sequence[Step]) -> bool:
    return any(s.name == name and s.continue_on_failure for s in steps)


def _scope(
    inputs: Mapping[str, Any],
    steps: Sequence[Step],
    entries: Mapping[str, StepStatus],
    ref: WorkflowRef,
) -> Scope:
    return Scope(
        inputs=inputs,
        step_outputs={s.name: entries[s.name].output for s in steps},
        step_phases={s.name: entries[s.name].phase.value for s in steps},
        workflow={"name": ref.name, "namespace": ref.namespace, "uid": ref.uid},
    )


def _step_invalid(entry: StepStatus, decision: Decision, now: datetime, message: str) -> None:
    entry.phase = StepPhase.FAILED
    entry.reason = StepReason.INVALID_SPEC
    entry.message = message
    entry.finished_at = now
    decision.events.append(EngineEvent("InvalidSpec", f"{entry.name}: {message}", "Warning"))


# -- whole-workflow transitions ------------------------------------------------------------


def _sync_step_entries(
    status: WorkflowStatus,
    steps: Sequence[Step],
    agents: dict[str, AgentView],
    decision: Decision,
) -> None:
    """One entry per step, in step order. Steps can change under a run only through its
    WorkflowTemplate; an attempt of a step that is gone is released, not leaked."""
    existing = {e.name: e for e in status.steps}
    wanted = {s.name for s in steps}
    for entry in status.steps:
        if entry.name not in wanted and entry.phase is StepPhase.RUNNING:
            release(entry, "abandoned", agents, decision)
    status.steps = [
        existing.get(s.name) or StepStatus(name=s.name, phase=StepPhase.PENDING) for s in steps
    ]


def _reset_failed(status: WorkflowStatus, generation: int, now: datetime) -> bool:
    """Act on retry generation `generation`: failed, cancelled and upstream-skipped steps
    run again as new attempts (new task ids) with fresh retry limits, and the run gets a
    fresh retry budget and a fresh deadline (a retry of a run that ran out of time would
    otherwise fail at once). Returns whether anything is retried."""
    status.retry_generation = generation
    retried = False
    for entry in status.steps:
        if entry.phase in (StepPhase.FAILED, StepPhase.CANCELLED) or (
            entry.phase is StepPhase.SKIPPED and entry.reason is StepReason.UPSTREAM_FAILED
        ):
            retried = True
            entry.phase = StepPhase.PENDING
            entry.attempt = 0
            entry.retries = 0
            entry.finished_at = None
            entry.retry_at = None
            entry.reason = StepReason.RETRY_REQUESTED
            entry.message = None
    if retried or status.phase is WorkflowPhase.FAILED:
        status.phase = WorkflowPhase.RUNNING
        status.completion_time = None
        status.start_time = now
        status.retries_used = 0
    return retried


def _cancel_all(
    status: WorkflowStatus,
    decision: Decision,
    now: datetime,
    *,
    reason: StepReason,
    message: str,
    failed: bool = False,
) -> None:
    for entry in status.steps:
        if entry.phase.finished:
            continue
        if entry.phase is StepPhase.RUNNING:
            release(entry, "abandoned", None, decision)
            entry.phase = StepPhase.FAILED if failed else StepPhase.CANCELLED
        else:
            entry.phase = StepPhase.CANCELLED
        entry.reason = reason
        entry.message = message
        entry.finished_at = now


def _fail_invalid(
    ref: WorkflowRef,
    spec: WorkflowSpec,
    status: WorkflowStatus,
    decision: Decision,
    message: str,
    now: datetime,
) -> None:
    """The run cannot go on: fail it, releasing whatever it still had running (the steps
    may be gone, e.g. its WorkflowTemplate was deleted mid-run)."""
    old = status.phase
    _cancel_all(status, decision, now, reason=StepReason.INVALID_SPEC, message=message)
    status.phase = WorkflowPhase.FAILED
    status.message = f"invalid spec: {message}"
    status.start_time = status.start_time or now
    status.completion_time = now
    status.conditions = set_condition(
        status.conditions,
        type="Succeeded",
        status="False",
        reason=WorkflowReason.INVALID_SPEC,
        message=message,
        now=now,
        generation=ref.generation,
    )
    if old is not WorkflowPhase.FAILED:
        decision.events.append(EngineEvent("InvalidSpec", message, "Warning"))
    _finish_ttl(spec, status, decision, now)


def _conclude(
    ref: WorkflowRef,
    spec: WorkflowSpec,
    status: WorkflowStatus,
    decision: Decision,
    steps: Sequence[Step],
    now: datetime,
    forced: tuple[WorkflowPhase, WorkflowReason, str] | None = None,
) -> None:
    """Progress, phase and the `Succeeded` condition from the steps (or `forced`: a phase,
    reason and message decided by a control verb or the deadline)."""
    total = len(status.steps)
    done = sum(1 for e in status.steps if e.phase.finished)
    status.progress = f"{done}/{total}"
    failed = [
        e for e in status.steps if e.phase is StepPhase.FAILED and not _continues(e.name, steps)
    ]
    reason: WorkflowReason
    if forced is not None:
        phase, reason, message = forced
    elif done == total and not failed:
        phase, reason = WorkflowPhase.SUCCEEDED, WorkflowReason.SUCCEEDED
        message = "all steps finished"
    elif (
        failed
        and not any(e.phase is StepPhase.RUNNING for e in status.steps)
        and _no_more_work(status)
    ):
        first = failed[0]
        phase = WorkflowPhase.FAILED
        reason = _FAILED_RUN_REASONS.get(first.reason, WorkflowReason.STEP_FAILED)
        message = f"step {first.name} failed: {first.message}"
    else:
        phase = WorkflowPhase.SUSPENDED if spec.suspend else WorkflowPhase.RUNNING
        reason = WorkflowReason.SUSPENDED if spec.suspend else WorkflowReason.RUNNING
        message = _running_message(status)

    status.phase = phase
    status.message = message
    if phase.finished:
        status.completion_time = status.completion_time or now
        for entry in status.steps:
            if not entry.phase.finished:
                entry.phase = StepPhase.CANCELLED
                entry.reason = entry.reason if forced else StepReason.WORKFLOW_FINISHED
                entry.finished_at = now
        status.progress = f"{sum(1 for e in status.steps if e.phase.finished)}/{total}"
        _finish_ttl(spec, status, decision, now)
    cond_status: Literal["True", "False", "Unknown"] = (
        "True" if phase is WorkflowPhase.SUCCEEDED else "False" if phase.finished else "Unknown"
    )
    status.conditions = set_condition(
        status.conditions,
        type="Succeeded",
        status=cond_status,
        reason=reason,
        message=message,
        now=now,
        generation=ref.generation,
    )


# The step reasons a failed run passes on as its own; any other failure is `StepFailed`.
_FAILED_RUN_REASONS: Mapping[StepReason | str | None, WorkflowReason] = {
    StepReason.INVALID_SPEC: WorkflowReason.INVALID_SPEC,
    StepReason.TIMED_OUT: WorkflowReason.TIMED_OUT,
}


def _no_more_work(status: WorkflowStatus) -> bool:
    """True when nothing can still change the outcome (no step pending a retry or agent)."""
    return all(e.phase.finished for e in status.steps)


def _running_message(status: WorkflowStatus) -> str:
    running = [e for e in status.steps if e.phase is StepPhase.RUNNING]
    if running:
        return "running " + ", ".join(f"{e.name} on {e.agent}" for e in running)
    waiting = [e for e in status.steps if e.phase is StepPhase.WAITING_FOR_APPROVAL]
    if waiting:
        return f"{waiting[0].name}: {waiting[0].message}"
    queued = [e for e in status.steps if e.phase is StepPhase.QUEUED]
    if queued:
        return f"{queued[0].name}: {queued[0].message}"
    retrying = [e for e in status.steps if e.retry_at is not None]
    if retrying:
        return f"{retrying[0].name}: {retrying[0].message}"
    return "waiting"


def _finish_ttl(
    spec: WorkflowSpec, status: WorkflowStatus, decision: Decision, now: datetime
) -> None:
    if spec.ttl_seconds_after_finished is None or status.completion_time is None:
        return
    expires = status.completion_time + timedelta(seconds=spec.ttl_seconds_after_finished)
    if now >= expires:
        decision.delete = True
    else:
        decision.wake_at(expires, now)


def _finalise(
    ref: WorkflowRef,
    status: WorkflowStatus,
    decision: Decision,
    old_phase: WorkflowPhase | None,
    now: datetime,
) -> Decision:
    status.observed_generation = ref.generation
    set_gate_condition(status, now=now, generation=ref.generation)
    if status.phase is not old_phase and status.phase is not None:
        kind: Literal["Normal", "Warning"] = (
            "Warning" if status.phase in (WorkflowPhase.FAILED,) else "Normal"
        )
        decision.events.append(
            EngineEvent(
                f"Workflow{status.phase.value}",
                status.message or "",
                kind,
                progress=status.phase is WorkflowPhase.RUNNING,
            )
        )
    return decision
