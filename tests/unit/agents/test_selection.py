"""Which agent takes a step: by name, or by capabilities and labels among free, ready agents."""

from __future__ import annotations

from datetime import timedelta, timezone

from engine_harness import (
    T0,
    SimAgent,
    agent,
    done,
    entry,
    once,
    seconds,
    simulate,
    spec,
    step,
)

from opscore_logic.selection import AgentView, select_agent, step_fits, why_no_agent
from opscore_logic.workflow_model import Step, StepPhase, WorkflowPhase


def chosen(step_: Step, *agents: AgentView) -> str | None:
    picked = select_agent(step_, agents)
    return picked.name if picked else None


# -- by name -------------------------------------------------------------------------------


def test_a_step_names_its_agent_by_resource_name() -> None:
    assert chosen(step("s", agent="alpha"), agent("alpha"), agent("beta")) == "alpha"


def test_a_step_names_its_agent_by_spec_agent_name() -> None:
    a = agent("a-1f3e", agent_name="Summariser")
    assert chosen(step("s", agent="Summariser"), agent("beta"), a) == "a-1f3e"


def test_a_step_names_its_agent_by_agentkit_id() -> None:
    a = agent("a-1f3e", agent_id="0b9c-UUID")
    assert chosen(step("s", agent="0b9c-UUID"), agent("beta"), a) == "a-1f3e"


def test_a_named_agent_is_used_even_without_the_capabilities_others_offer() -> None:
    assert chosen(step("s", agent="plain"), agent("plain"), agent("x", caps=["gpu"])) == "plain"


def test_a_busy_named_agent_is_not_replaced_by_another() -> None:
    assert chosen(step("s", agent="alpha"), agent("alpha", free=0), agent("beta")) is None


# -- by capabilities and labels ------------------------------------------------------------


def test_capabilities_route_to_an_agent_offering_all_of_them() -> None:
    s = step("s", caps=["search", "summarise"])
    agents = [agent("only-search", caps=["search"]), agent("both", caps=["summarise", "search"])]
    assert chosen(s, *agents) == "both"


def test_a_label_selector_narrows_capability_routing() -> None:
    s = step("s", caps=["gpu"], labels={"zone": "eu"})
    agents = [
        agent("us", caps=["gpu"], labels={"zone": "us"}),
        agent("eu", caps=["gpu"], labels={"zone": "eu", "x": "y"}),
    ]
    assert chosen(s, *agents) == "eu"


def test_an_agent_that_is_not_ready_is_never_chosen() -> None:
    assert chosen(step("s"), agent("a", ready=False), agent("b")) == "b"


def test_an_agent_without_a_free_slot_is_never_chosen() -> None:
    assert chosen(step("s"), agent("a", free=0)) is None


def test_the_least_recently_dispatched_agent_goes_first() -> None:
    agents = [
        agent("a", last=T0 + seconds(5)),
        agent("b", last=T0 + seconds(1)),
        agent("c", last=T0 + seconds(3)),
    ]
    assert chosen(step("s"), *agents) == "b"


def test_an_agent_never_dispatched_to_goes_before_any_other() -> None:
    assert chosen(step("s"), agent("a", last=T0), agent("z")) == "z"


def test_ties_are_broken_by_name() -> None:
    assert chosen(step("s"), agent("m", last=T0), agent("b", last=T0), agent("x")) == "x"
    assert chosen(step("s"), agent("m"), agent("b")) == "b"


def test_dispatch_times_in_other_time_zones_compare_as_instants() -> None:
    plus2 = timezone(timedelta(hours=2))
    # a's dispatch is 09:30 UTC (11:30 at +02:00), b's 10:00 UTC: a is the older one.
    a = agent("a", last=(T0 + timedelta(minutes=30)).astimezone(plus2))
    b = agent("b", last=T0 + timedelta(hours=1))
    assert chosen(step("s"), b, a) == "a"


def test_step_fits_ignores_readiness() -> None:
    assert step_fits(step("s", caps=["x"]), agent("a", caps=["x"], ready=False, free=0))
    assert not step_fits(step("s", caps=["x"]), agent("a", caps=["y"]))


# -- why a step waits ----------------------------------------------------------------------


def test_queued_reason_names_the_missing_capabilities() -> None:
    message = why_no_agent(step("s", caps=["gpu", "vision"]), [agent("a", caps=["gpu"])])
    assert message == "waiting for an agent with capabilities [gpu, vision] (none registered)"


def test_queued_reason_counts_fitting_agents_that_are_busy() -> None:
    message = why_no_agent(step("s", caps=["gpu"]), [agent("a", caps=["gpu"], free=0)])
    assert message == "waiting for a free agent with capabilities [gpu] (1 busy or not ready)"


def test_queued_reason_for_a_named_agent_that_does_not_exist() -> None:
    assert why_no_agent(step("s", agent="ghost"), []) == (
        "waiting for agent 'ghost' (no such Agent yet)"
    )


def test_queued_reason_for_a_named_agent_that_is_busy() -> None:
    assert why_no_agent(step("s", agent="a"), [agent("a", free=0)]) == (
        "waiting for agent 'a' to become ready"
    )


# -- in the engine -------------------------------------------------------------------------


def test_no_fitting_agent_queues_the_step_with_a_reason_naming_the_capabilities() -> None:
    d = once(spec(step("s", caps=["gpu"])), agents=[agent("cpu", caps=["cpu"])])
    s = entry(d.status, "s")
    assert (s.phase, s.reason) == (StepPhase.QUEUED, "NoAgentAvailable")
    assert "[gpu]" in (s.message or "")
    assert d.status.phase is WorkflowPhase.RUNNING
    assert "[gpu]" in (d.status.message or "")
    assert [e.reason for e in d.events] == ["WorkflowRunning"]  # queueing is told by status


def test_a_queued_step_is_dispatched_as_soon_as_an_agent_is_free() -> None:
    wf = spec(step("s", caps=["gpu"]))
    first = once(wf, agents=[agent("g", caps=["gpu"], free=0)])
    assert entry(first.status, "s").phase is StepPhase.QUEUED
    d = once(wf, first.status, [agent("g", caps=["gpu"])], T0 + seconds(1))
    assert [(x.step, x.agent) for x in d.dispatches] == [("s", "g")]
    assert entry(d.status, "s").phase is StepPhase.RUNNING


def test_staying_queued_emits_no_new_event() -> None:
    wf = spec(step("s", caps=["gpu"]))
    first = once(wf, agents=[])
    again = once(wf, first.status, [], T0 + seconds(1))
    assert again.events == []
    assert again.status == first.status


def test_a_busy_agent_never_gets_a_second_task_in_one_pass() -> None:
    wf = spec(step("a", after=[]), step("b", after=[]))
    d = once(wf, agents=[agent("x")])
    assert [x.step for x in d.dispatches] == ["a"]
    assert entry(d.status, "b").phase is StepPhase.QUEUED


def test_an_agent_with_two_slots_takes_two_steps_in_one_pass() -> None:
    wf = spec(step("a", after=[]), step("b", after=[]), step("c", after=[]))
    d = once(wf, agents=[agent("x", free=2)])
    assert [x.step for x in d.dispatches] == ["a", "b"]
    assert entry(d.status, "c").phase is StepPhase.QUEUED


def test_parallel_steps_spread_over_agents_least_recently_used_first() -> None:
    wf = spec(step("a", after=[]), step("b", after=[]))
    agents = [agent("x", free=2, last=T0), agent("y", last=T0 - seconds(60))]
    d = once(wf, agents=agents, now=T0 + seconds(1))
    assert [(x.step, x.agent) for x in d.dispatches] == [("a", "y"), ("b", "x")]


def test_earlier_listed_steps_get_agents_first() -> None:
    wf = spec(step("second", after=[]), step("first", after=[]))
    d = once(wf, agents=[agent("x")])
    assert [x.step for x in d.dispatches] == ["second"]


def test_the_next_step_goes_to_the_same_agent_in_the_pass_its_predecessor_finishes() -> None:
    wf = spec(step("a", agent="x"), step("b", agent="x"))
    first = once(wf, agents=[agent("x")])
    task = entry(first.status, "a").task_id
    assert task is not None
    # The ledger still counts task a: the agent's only slot is taken until this pass.
    busy = agent("x", done(task, T0 + seconds(1)), free=0)
    d = once(wf, first.status, [busy], T0 + seconds(2))
    assert [r.task_id for r in d.releases] == [task]
    assert [(x.step, x.agent) for x in d.dispatches] == [("b", "x")]


def test_a_slot_is_not_reused_while_the_agent_is_not_ready() -> None:
    wf = spec(step("a", agent="x"), step("b", agent="x"))
    first = once(wf, agents=[agent("x")])
    task = entry(first.status, "a").task_id
    assert task is not None
    paused = agent("x", done(task, T0 + seconds(1)), free=0, ready=False)
    d = once(wf, first.status, [paused], T0 + seconds(2))
    assert entry(d.status, "a").phase is StepPhase.SUCCEEDED
    assert d.dispatches == []
    assert entry(d.status, "b").phase is StepPhase.QUEUED


def test_work_is_shared_among_agents_with_the_capability() -> None:
    wf = spec(*(step(f"s{i}", caps=["w"], after=[]) for i in range(6)))
    world = simulate(wf, [SimAgent("a", frozenset({"w"})), SimAgent("b", frozenset({"w"}))])
    assert world.status.phase is WorkflowPhase.SUCCEEDED
    by_agent = [x.agent for x in world.dispatches]
    assert by_agent.count("a") == by_agent.count("b") == 3
    assert world.max_in_flight == {"a": 1, "b": 1}
