"""Builders and a small simulated world for specifying the workflow engine.

The builders (`step`, `spec`, `agent`, `report`, `once`) make one-pass tests short. `World`
plays the operator around `reconcile` the way the real one does: it keeps a ledger of tasks
in flight per agent (reserved on dispatch, freed on release), builds the agents' views from
it, feeds back dispatches AgentKit refused as `failed_dispatches`, and lets simulated agents
answer each task with state reports that arrive later (exact `opscore_task_id` correlation
or reference-agent `active`/`idle` pairs). `simulate` runs a world until the workflow
finishes. With `check=True` every pass is also checked against the engine's invariants
(see `World.check_pass`), which is what the property tests rely on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from opscore_logic.agent_model import AgentReport
from opscore_logic.engine import Decision, Dispatch, FailedDispatch, WorkflowRef, reconcile
from opscore_logic.graph import dependencies
from opscore_logic.selection import AgentView, step_fits
from opscore_logic.workflow_model import (
    RetryPolicy,
    Step,
    StepPhase,
    StepStatus,
    WorkflowSpec,
    WorkflowStatus,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
REF = WorkflowRef(namespace="ns", name="wf", uid="uid-1")


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


# -- builders ------------------------------------------------------------------------------


def step(
    name: str,
    *,
    agent: str | None = None,
    caps: Iterable[str] | None = None,
    after: list[str] | None = None,
    labels: Mapping[str, str] | None = None,
    retries: int | None = None,
    backoff: float = 1.0,
    factor: float = 2.0,
    max_backoff: float = 300.0,
    **fields: Any,
) -> Step:
    """A step routed to `agent` by name, else by `caps` (default: any agent, `agent=name`
    is never implied). `after` is `dependsOn`."""
    extra: dict[str, Any] = dict(fields)
    if agent is None and caps is None:
        caps = ()
    if caps is not None:
        extra["capabilities"] = list(caps)
    if labels:
        extra["agent_selector"] = {"match_labels": dict(labels)}
    if retries is not None:
        extra["retries"] = RetryPolicy(
            limit=retries, backoff_seconds=backoff, factor=factor, max_backoff_seconds=max_backoff
        )
    return Step(name=name, agent=agent, depends_on=after, **extra)


def spec(*steps: Step, **fields: Any) -> WorkflowSpec:
    return WorkflowSpec(steps=list(steps), **fields)


def report(
    state: str, at: datetime, *, received: datetime | None = None, **details: Any
) -> AgentReport:
    return AgentReport(state=state, timestamp=at, received_at=received or at, details=dict(details))


def done(task_id: str, at: datetime, **output: Any) -> AgentReport:
    """A correlated success report (with `output` when given)."""
    details: dict[str, Any] = {"opscore_task_id": task_id}
    if output:
        details["output"] = output
    return report("idle", at, **details)


def agent(
    name: str,
    *reports: AgentReport,
    free: int = 1,
    caps: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    ready: bool = True,
    offline: bool = False,
    last: datetime | None = None,
    agent_id: str | None = None,
    agent_name: str | None = None,
) -> AgentView:
    return AgentView(
        name=name,
        agent_id=agent_id or f"id-{name}",
        agent_name=agent_name,
        capabilities=frozenset(caps),
        labels=dict(labels or {}),
        ready=ready,
        free_slots=free,
        offline=offline,
        last_dispatch_at=last,
        reports=tuple(reports),
    )


def once(
    spec_: WorkflowSpec,
    status: WorkflowStatus | None = None,
    agents: Iterable[AgentView] = (),
    now: datetime = T0,
    **kwargs: Any,
) -> Decision:
    """One reconcile pass with the spec's own steps."""
    kwargs.setdefault("steps", spec_.steps)
    return reconcile(
        ref=kwargs.pop("ref", REF),
        spec=spec_,
        status=status if status is not None else WorkflowStatus(),
        agents={a.name: a for a in agents},
        now=now,
        **kwargs,
    )


def entry(status: WorkflowStatus, name: str) -> StepStatus:
    return next(e for e in status.steps if e.name == name)


def phases(status: WorkflowStatus) -> dict[str, StepPhase]:
    return {e.name: e.phase for e in status.steps}


def succeeded_condition(status: WorkflowStatus) -> tuple[str, str]:
    cond = next(c for c in status.conditions if c.type == "Succeeded")
    return cond.status, cond.reason


# -- the simulated world -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """How a simulated agent answers one dispatched task."""

    succeeded: bool = True
    delay: float = 1.0  # seconds from dispatch until the final report is received
    output: dict[str, Any] | None = None
    silent: bool = False  # never reports (the step can only time out)
    refused: str | None = None  # AgentKit does not take the task (failed_dispatches)
    # the POST's answer is lost: the engine hears of a failure that AgentKit may have
    # taken (and must send the same task id again, the only id allowed to repeat)
    answer_lost: bool = False
    out_of_order: bool = False  # reference agent: idle is received before active


def always_succeed(dispatch: Dispatch, world: World) -> Answer:
    return Answer(output={"by": dispatch.agent, "step": dispatch.step})


@dataclass
class SimAgent:
    name: str
    caps: frozenset[str] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)
    slots: int = 1
    mode: Literal["correlated", "reference"] = "correlated"
    paused: bool = False
    offline: bool = False
    deleted: bool = False
    offline_between: tuple[datetime, datetime] | None = None  # silent in this window
    gone_between: tuple[datetime, datetime] | None = None  # its Agent object is deleted

    def is_offline(self, now: datetime) -> bool:
        window = self.offline_between
        return self.offline or (window is not None and window[0] <= now < window[1])

    def is_gone(self, now: datetime) -> bool:
        window = self.gone_between
        return self.deleted or (window is not None and window[0] <= now < window[1])

    def changes(self) -> list[datetime]:
        """When this agent goes away or comes back (the operator reconciles then)."""
        return [t for w in (self.offline_between, self.gone_between) if w for t in w]


class InvariantError(AssertionError):
    pass


class World:
    """The operator's side of the loop, simulated: ledger, agents, reports, clock."""

    def __init__(
        self,
        spec_: WorkflowSpec,
        agents: Iterable[SimAgent],
        *,
        answer: Callable[[Dispatch, World], Answer] = always_succeed,
        steps: list[Step] | None = None,
        inputs: Mapping[str, Any] | None = None,
        resolve_error: str | None = None,
        check: bool = False,
        ref: WorkflowRef = REF,
        start: datetime = T0,
    ) -> None:
        self.spec = spec_
        self.steps = steps if steps is not None else spec_.steps
        self.inputs = inputs
        self.resolve_error = resolve_error
        self.agents = {a.name: a for a in agents}
        self.answer = answer
        self.check = check
        self.ref = ref
        self.now = start
        self.status = WorkflowStatus()
        self.ledger: dict[str, dict[str, str]] = {}  # agent -> task id -> step
        self.last_dispatch: dict[str, datetime] = {}
        self.reports: dict[str, list[AgentReport]] = {a: [] for a in self.agents}
        self.arrivals: list[tuple[datetime, str, AgentReport]] = []
        self.refused: dict[str, FailedDispatch] = {}  # failed_dispatches for the next pass
        # task id -> how often its answer was lost: the only ids that may repeat, once each
        self.unconfirmed: Counter[str] = Counter()
        self.decisions: list[Decision] = []
        self.dispatches: list[Dispatch] = []
        self.task_ids: set[str] = set()
        self.max_in_flight: dict[str, int] = {}
        self.deleted = False

    # -- what the engine sees --------------------------------------------------------------

    def views(self) -> dict[str, AgentView]:
        views: dict[str, AgentView] = {}
        for name, sim in self.agents.items():
            if sim.is_gone(self.now):
                continue
            active = len(self.ledger.get(name, {}))
            offline = sim.is_offline(self.now)
            views[name] = AgentView(
                name=name,
                agent_id=f"id-{name}",
                capabilities=sim.caps,
                labels=dict(sim.labels),
                ready=not sim.paused and not offline,
                free_slots=max(0, sim.slots - active),
                offline=offline,
                last_dispatch_at=self.last_dispatch.get(name),
                reports=tuple(self.reports[name]),
            )
        return views

    def decide(
        self, views: dict[str, AgentView] | None = None, status: WorkflowStatus | None = None
    ) -> Decision:
        return reconcile(
            ref=self.ref,
            spec=self.spec,
            status=self.status if status is None else status,
            steps=self.steps,
            agents=self.views() if views is None else views,
            now=self.now,
            inputs=self.inputs,
            resolve_error=self.resolve_error,
            failed_dispatches=dict(self.refused),
        )

    # -- one pass --------------------------------------------------------------------------

    def run_pass(self) -> Decision:
        views = self.views()
        decision = self.decide(views)
        self.decisions.append(decision)
        for release in decision.releases:
            self.ledger.get(release.agent, {}).pop(release.task_id, None)
            self.refused.pop(release.task_id, None)
        for dispatch in decision.dispatches:
            self.ledger.setdefault(dispatch.agent, {})[dispatch.task_id] = dispatch.step
            self.last_dispatch[dispatch.agent] = self.now
            in_flight = len(self.ledger[dispatch.agent])
            self.max_in_flight[dispatch.agent] = max(
                self.max_in_flight.get(dispatch.agent, 0), in_flight
            )
        self.status = decision.status
        if self.check:
            self.check_pass(views, decision)
        for dispatch in decision.dispatches:
            self.dispatches.append(dispatch)
            self.task_ids.add(dispatch.task_id)
            self._schedule(dispatch)
        if decision.delete:
            self.deleted = True
        return decision

    def _schedule(self, dispatch: Dispatch) -> None:
        answer = self.answer(dispatch, self)
        if answer.refused is not None:
            self.refused[dispatch.task_id] = FailedDispatch(answer.refused)
            return
        if answer.answer_lost:
            self.refused[dispatch.task_id] = FailedDispatch("ReadTimeout", maybe_delivered=True)
            self.unconfirmed[dispatch.task_id] += 1
            return
        if answer.silent:
            return
        sim = self.agents[dispatch.agent]
        finish = self.now + seconds(answer.delay)
        correlation = {"opscore_task_id": dispatch.task_id} if sim.mode == "correlated" else {}
        if not answer.succeeded:
            details = {"error_code": "TASK_FAILED", "message": f"{dispatch.step} failed"}
            self._arrive(finish, dispatch.agent, "error", finish, details | correlation)
            return
        idle: dict[str, Any] = dict(correlation)
        if answer.output is not None and sim.mode == "correlated":
            idle["output"] = answer.output
        started = finish - timedelta(milliseconds=10)
        if answer.out_of_order:
            self._arrive(finish, dispatch.agent, "idle", finish, idle)
            self._arrive(finish + seconds(0.5), dispatch.agent, "active", started, correlation)
        else:
            self._arrive(started, dispatch.agent, "active", started, correlation)
            self._arrive(finish, dispatch.agent, "idle", finish, idle)

    def _arrive(
        self, when: datetime, agent: str, state: str, at: datetime, details: dict[str, Any]
    ) -> None:
        rep = AgentReport(state=state, timestamp=at, received_at=when, details=details)
        self.arrivals.append((when, agent, rep))

    # -- time ------------------------------------------------------------------------------

    def advance(self, requeue_after: float | None) -> bool:
        """Move the clock to the next thing that can change the outcome and deliver the
        reports that have arrived by then. False when nothing is left to wait for."""
        moments = [when for when, _, _ in self.arrivals]
        for sim in self.agents.values():  # an agent going or coming back is news
            moments.extend(t for t in sim.changes() if t > self.now)
        if self.refused:  # the operator requeues the workflow when a dispatch fails
            moments.append(self.now)
        if requeue_after is not None:
            moments.append(self.now + seconds(requeue_after))
        if not moments:
            return False
        self.now = max(self.now + timedelta(microseconds=1), min(moments))
        self.deliver()
        return True

    def deliver(self) -> None:
        due = [a for a in self.arrivals if a[0] <= self.now]
        self.arrivals = [a for a in self.arrivals if a[0] > self.now]
        for _, name, rep in sorted(due, key=lambda a: a[0]):
            self.reports.setdefault(name, []).append(rep)

    def run_until(
        self, condition: Callable[[WorkflowStatus], bool], max_passes: int = 500
    ) -> WorkflowStatus:
        """Pass after pass (advancing the clock between them) until `condition` holds."""
        for _ in range(max_passes):
            decision = self.run_pass()
            if condition(self.status):
                return self.status
            if not self.advance(decision.requeue_after):
                break
        raise AssertionError(f"condition never held: {self.status}")

    def run(self, max_passes: int = 500) -> WorkflowStatus:
        for _ in range(max_passes):
            decision = self.run_pass()
            if self.status.phase is not None and self.status.phase.finished:
                return self.status
            if not self.advance(decision.requeue_after):
                return self.status
        raise AssertionError(f"workflow not finished after {max_passes} passes: {self.status}")

    # -- invariants ------------------------------------------------------------------------

    def check_pass(self, views: Mapping[str, AgentView], decision: Decision) -> None:
        """What must hold after every pass (raises InvariantError naming the breach).

        - a step is dispatched only once all its dependencies are satisfied, to a ready
          agent it fits, under a task id never used before;
        - no agent has more tasks in flight than its slots (the ledger after the pass);
        - no step retries more than its limit, no run more than its budget;
        - the ledger holds exactly the running steps' tasks;
        - a repeated pass with nothing new, from the status as stored in the API (and so
          as read back after a restart), neither acts nor changes the status.
        """
        status = decision.status
        steps = {s.name: s for s in self.steps or []}
        deps = dependencies(self.steps or [])
        entries = {e.name: e for e in status.steps}
        for dispatch in decision.dispatches:
            view = views.get(dispatch.agent)
            if view is None or not view.ready or not step_fits(steps[dispatch.step], view):
                raise InvariantError(f"{dispatch.step} dispatched to unfit agent {view}")
            for dep in deps[dispatch.step]:
                if not _satisfied(entries[dep], steps[dep]):
                    raise InvariantError(
                        f"{dispatch.step} dispatched while {dep} is {entries[dep].phase}"
                    )
            if dispatch.task_id in self.task_ids and dispatch.task_id not in self.unconfirmed:
                raise InvariantError(f"task id {dispatch.task_id} reused")
        for name, tasks in self.ledger.items():
            if len(tasks) > self.agents[name].slots:
                raise InvariantError(f"{name} has {len(tasks)} tasks in flight: {tasks}")
        for e in status.steps:
            policy = steps[e.name].retries
            if e.retries > (policy.limit if policy else 0):
                raise InvariantError(f"{e.name} retried {e.retries} times")
        if self.spec.retry_budget is not None and status.retries_used > self.spec.retry_budget:
            raise InvariantError(f"{status.retries_used} retries over the budget")
        running = {(e.agent, e.task_id) for e in status.steps if e.phase is StepPhase.RUNNING}
        in_ledger = {(a, t) for a, tasks in self.ledger.items() for t in tasks}
        if running != in_ledger:
            raise InvariantError(f"running {running} but ledger holds {in_ledger}")
        stored = WorkflowStatus.model_validate(status.wire())
        again = self.decide(status=stored)
        if again.dispatches or again.releases:
            raise InvariantError(f"a repeated pass acted again: {again}")
        if again.status != status:
            raise InvariantError(f"a repeated pass changed status:\n{status}\n{again.status}")


def _satisfied(dep: StepStatus, step_: Step) -> bool:
    if dep.phase is StepPhase.SUCCEEDED:
        return True
    if dep.phase is StepPhase.SKIPPED and dep.reason == "WhenFalse":
        return True
    return dep.phase is StepPhase.FAILED and step_.continue_on_failure


def simulate(
    spec_: WorkflowSpec,
    agents: Iterable[SimAgent],
    *,
    answer: Callable[[Dispatch, World], Answer] = always_succeed,
    check: bool = True,
    max_passes: int = 500,
    **kwargs: Any,
) -> World:
    """Run the workflow to its end (or until nothing is left to wait for)."""
    world = World(spec_, agents, answer=answer, check=check, **kwargs)
    world.run(max_passes)
    return world
