"""A never-written run whose steps only wait for a busy agent is not written (it reads as
`Pending` from the CRD default); every other first decision is."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine_harness import agent, once, spec, step

from opscore_logic.deferral import deferrable_first_write, serves_in
from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import WorkflowSpec, WorkflowStatus


def deferrable(wf: WorkflowSpec, agents: list[AgentView], **status: Any) -> bool:
    old = WorkflowStatus(**status)
    decision = once(wf, old, agents=agents)
    return deferrable_first_write(
        old=old,
        decision=decision,
        spec=wf,
        steps=wf.steps,
        serves=serves_in({a.name: a for a in agents}),
    )


BUSY = agent("busy", caps=["work"], free=0)


def busy_as_the_operator_sees_it() -> AgentView:
    """The operator folds a full agent into `ready=False` and says why with `busy`."""
    return replace(agent("full", caps=["work"], ready=False, free=0), busy=True)


def test_a_run_queued_behind_busy_agents_waits() -> None:
    assert deferrable(spec(step("a", caps=["work"]), step("b", caps=["work"], after=["a"])), [BUSY])


def test_a_run_queued_behind_agents_not_ready_only_for_being_full_waits() -> None:
    assert deferrable(spec(step("a", caps=["work"])), [busy_as_the_operator_sees_it()])


def test_a_run_that_dispatches_is_written() -> None:
    assert not deferrable(spec(step("a", caps=["work"])), [agent("free", caps=["work"])])


def test_a_run_no_agent_fits_is_written() -> None:
    assert not deferrable(spec(step("a", caps=["gpu"])), [BUSY])


def test_a_run_whose_fitting_agents_are_not_ready_is_written() -> None:
    paused = agent("paused", caps=["work"], ready=False)
    assert not deferrable(spec(step("a", caps=["work"])), [paused])


def test_a_run_with_a_deadline_is_written_so_its_clock_starts() -> None:
    assert not deferrable(spec(step("a", caps=["work"]), deadline_seconds=60), [BUSY])


def test_a_suspended_or_cancelled_run_is_written() -> None:
    assert not deferrable(spec(step("a", caps=["work"]), suspend=True), [BUSY])
    assert not deferrable(spec(step("a", caps=["work"]), cancel=True), [BUSY])


def test_a_run_with_a_skipped_step_is_written() -> None:
    wf = spec(step("a", caps=["work"], when="false"), step("b", caps=["work"]))
    assert not deferrable(wf, [BUSY])


def test_a_run_already_written_is_not_deferred() -> None:
    assert not deferrable(spec(step("a", caps=["work"])), [BUSY], phase="Running")
