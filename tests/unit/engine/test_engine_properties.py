"""Properties of the engine over random workflows, agents and event orders (hypothesis).

Every pass of every simulated run is checked by `World.check_pass` (engine_harness):
dependencies before dispatch, ready and fitting agents only, no agent over its slots,
retries within limits, task ids never reused, the ledger equal to the running steps, and a
repeated pass from the stored status being a no-op (restart safety). On top of that each
run must end, and end consistently.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from engine_harness import T0, Answer, SimAgent, World, seconds, spec, step
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opscore_logic.engine import Dispatch
from opscore_logic.workflow_model import StepPhase, WorkflowPhase, WorkflowSpec, WorkflowStatus
from opscore_operator.ledger import Ledger

CAPS = ("research", "analysis", "writing")
MODES: tuple[Literal["correlated", "reference"], ...] = ("correlated", "reference")
# OPSCORE_PROPERTY_SCALE=50 for a long bug hunt; the default keeps the suite fast.
SCALE = float(os.environ.get("OPSCORE_PROPERTY_SCALE", "1"))


def examples(n: int) -> settings:
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


FAST = examples(120)


@dataclass
class Scenario:
    spec: WorkflowSpec
    agents: list[SimAgent]
    rng: random.Random
    failure_rate: float
    refusals: int

    def answer(self, dispatch: Dispatch, world: World) -> Answer:
        step_ = next(s for s in world.steps or [] if s.name == dispatch.step)
        if self.refusals and self.rng.random() < 0.15:
            self.refusals -= 1
            if self.rng.random() < 0.5:
                return Answer(answer_lost=True)  # may have been taken: same id next time
            return Answer(refused="AgentKit answered 503")
        if step_.timeout_seconds is not None and self.rng.random() < 0.2:
            return Answer(silent=True)
        return Answer(
            succeeded=self.rng.random() >= self.failure_rate,
            delay=self.rng.choice([0.01, 0.5, 1, 3, 7]),
            out_of_order=self.rng.random() < 0.3,
            output={"n": self.rng.randint(0, 9)},
        )


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime] | None:
    """Maybe a stretch of time in the first minute (an agent offline, or deleted)."""
    if not draw(st.booleans()):
        return None
    start = T0 + seconds(draw(st.integers(0, 20)))
    return start, start + seconds(draw(st.integers(1, 30)))


@st.composite
def scenarios(draw: st.DrawFn, *, churn: bool = False) -> Scenario:
    agents: list[SimAgent] = []
    for i in range(draw(st.integers(1, 4))):
        mode = draw(st.sampled_from(MODES))
        caps = frozenset(draw(st.sets(st.sampled_from(CAPS), max_size=3)))
        slots = 1 if mode == "reference" else draw(st.integers(1, 3))
        sim = SimAgent(f"ag{i}", caps, slots=slots, mode=mode)
        if churn:
            sim.offline_between = draw(windows())
            sim.gone_between = draw(windows())
        agents.append(sim)

    steps = []
    inputs: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 8))):
        name = f"s{i}"
        earlier = [f"s{j}" for j in range(i)]
        after: list[str] | None
        if earlier:
            after = draw(st.one_of(st.none(), st.lists(st.sampled_from(earlier), unique=True)))
        else:
            after = draw(st.sampled_from([None, []]))
        target = draw(st.sampled_from(agents))
        fields: dict[str, Any] = {}
        if draw(st.booleans()):
            fields["agent"] = target.name
        elif target.caps:  # a subset of one agent's capabilities, so someone fits
            fields["caps"] = sorted(draw(st.sets(st.sampled_from(sorted(target.caps)))))
        if draw(st.integers(0, 3)) == 0:
            inputs[f"run_{name}"] = draw(st.booleans())
            fields["when"] = f"inputs.run_{name} == true"
        limit = draw(st.integers(0, 2))
        steps.append(
            step(
                name,
                after=after,
                retries=limit if limit else None,
                backoff=draw(st.sampled_from([0, 0.5, 2])),
                max_backoff=3,
                timeout_seconds=draw(st.sampled_from([None, None, 5, 20])),
                continue_on_failure=draw(st.integers(0, 4)) == 0,
                **fields,
            )
        )
    budget = draw(st.sampled_from([None, None, 0, 1, 3]))
    wf = spec(*steps, inputs=inputs, retry_budget=budget)
    return Scenario(
        spec=wf,
        agents=agents,
        rng=draw(st.randoms(use_true_random=False)),
        failure_rate=draw(st.sampled_from([0.0, 0.2, 0.5])),
        refusals=draw(st.integers(0, 3)),
    )


def run(scenario: Scenario) -> World:
    world = World(scenario.spec, scenario.agents, answer=scenario.answer, check=True)
    world.run(max_passes=400)
    return world


def assert_concluded(world: World) -> None:
    status = world.status
    event(f"phase {status.phase}")
    reasons = {e.reason for d in world.decisions for e in d.status.steps}
    reasons |= {e.reason for d in world.decisions for e in d.events}
    for reason in sorted(r for r in reasons if r):
        event(f"reason {reason}")
    assert status.phase is not None, status
    assert status.phase.finished, status
    assert status.progress == f"{len(status.steps)}/{len(status.steps)}"
    assert not any(tasks for tasks in world.ledger.values()), world.ledger
    steps = {s.name: s for s in world.steps or []}
    cond = next(c for c in status.conditions if c.type == "Succeeded")
    hard_failures = [
        e
        for e in status.steps
        if e.phase is StepPhase.FAILED and not steps[e.name].continue_on_failure
    ]
    if status.phase is WorkflowPhase.SUCCEEDED:
        assert cond.status == "True"
        assert not hard_failures
        for e in status.steps:
            assert e.phase in (StepPhase.SUCCEEDED, StepPhase.SKIPPED, StepPhase.FAILED)
            if e.phase is StepPhase.SKIPPED:
                assert e.reason == "WhenFalse"
    else:
        assert status.phase is WorkflowPhase.FAILED
        assert cond.status == "False"
        assert hard_failures
    assert status.completion_time is not None


@FAST
@given(scenarios())
def test_every_run_ends_and_every_pass_keeps_the_invariants(scenario: Scenario) -> None:
    assert_concluded(run(scenario))


@FAST
@given(scenarios(churn=True))
def test_agents_going_offline_or_deleted_and_returning_never_break_the_invariants(
    scenario: Scenario,
) -> None:
    assert_concluded(run(scenario))


@examples(60)
@given(scenarios())
def test_without_failures_every_run_succeeds_and_each_step_runs_at_most_once(
    scenario: Scenario,
) -> None:
    scenario.failure_rate = 0.0
    scenario.spec = scenario.spec.model_copy(
        update={
            "steps": [
                s.model_copy(update={"timeout_seconds": None}) for s in scenario.spec.steps or []
            ]
        }
    )
    world = run(scenario)
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    accepted = [d for d in world.dispatches if d.task_id not in _refused_ids(world)]
    assert len({d.step for d in accepted}) == len(accepted)


def _refused_ids(world: World) -> set[str]:
    return {
        e.task_id or ""
        for d in world.decisions
        for e in d.status.steps
        if e.reason == "DispatchFailed"
    } | {r.task_id for d in world.decisions for r in d.releases if r.result == "abandoned"}


@examples(60)
@given(scenarios(), st.integers(1, 40))
def test_a_restart_mid_run_from_stored_status_finishes_the_same_way(
    scenario: Scenario, stop_after: int
) -> None:
    """The operator dies after `stop_after` passes; a new one starts from the stored
    status and rebuilds its ledger from it (Ledger.adopt): the run carries on unharmed."""
    world = World(scenario.spec, scenario.agents, answer=scenario.answer, check=True)
    for _ in range(stop_after):
        decision = world.run_pass()
        if world.status.phase is not None and world.status.phase.finished:
            break
        if not world.advance(decision.requeue_after):
            break
    world.status = WorkflowStatus.model_validate(world.status.wire())
    restarted = Ledger()
    restarted.adopt(WORKFLOW, world.status)
    agents = set(world.agents) | {e.agent for e in world.status.steps if e.agent}
    world.ledger = _drained(restarted, agents)
    world.run(max_passes=400)
    assert_concluded(world)


WORKFLOW = ("ns", "wf")


def _drained(ledger: Ledger, agents: set[str]) -> dict[str, dict[str, str]]:
    """The ledger's tasks in the harness's form (agent -> task id -> step), read through
    its public interface: oldest task first, released until the agent has none."""
    tasks: dict[str, dict[str, str]] = {}
    for agent in sorted(agents):
        key = (WORKFLOW[0], agent)
        while (task := ledger.current_task(key)) is not None:
            assert task.workflow == WORKFLOW
            tasks.setdefault(agent, {})[task.task_id] = task.step
            ledger.release(key, task.task_id, "abandoned")
    return tasks


@examples(40)
@given(scenarios(), st.integers(1, 3))
def test_retrying_a_failed_run_uses_fresh_task_ids_and_can_succeed(
    scenario: Scenario, bumps: int
) -> None:
    world = run(scenario)
    assert_concluded(world)
    for generation in range(1, bumps + 1):
        if world.status.phase is not WorkflowPhase.FAILED:
            break
        scenario.failure_rate = 0.0 if generation == bumps else scenario.failure_rate
        world.spec = world.spec.model_copy(update={"retry_generation": generation})
        world.now += seconds(100)
        world.run(max_passes=400)
        assert_concluded(world)
    sent = Counter(d.task_id for d in world.dispatches)
    assert all(count <= 1 + world.unconfirmed[task] for task, count in sent.items())
