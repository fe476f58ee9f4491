"""The agents one workflow pass hands the engine: those that can matter, not all of them.

The engine's choice for a step is the first free fitting agent in `select_agent`'s order
(least recently dispatched, then name), after the waiters ahead took theirs
(`views.after_waiters`). A pass dispatches at most one task per step, so it can only
ever pick among, per step, the first `len(steps)` free fitting agents: each dispatch
before a step changes one agent, and one of the first `len(steps)` is left untouched
and beats every agent behind it. Adding the agents the run's status names (for its
running steps) gives the engine everything it reads; `NamespaceAgents.count_fitting`
answers the one question about all agents (how many fit a queued step).

So a pass costs O(steps x candidates) plus the waiters ahead it simulates, which stop as
soon as no free agent is left: not O(agents) (tests/unit/test_agent_pool.py checks the
decisions equal the ones taken from every agent's view).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import Step
from opscore_operator.agentpool import NamespaceAgents
from opscore_operator.waiting import Waiter


def taken_by_waiters(pool: NamespaceAgents, waiters: Iterable[Waiter]) -> dict[str, AgentView]:
    """`after_waiters`, as the views it changed: each waiter ahead, in order, takes for
    each of its steps the best free agent that fits, until no agent is free."""
    free = pool.free_count()
    taken: dict[str, AgentView] = {}
    if not free:
        return taken
    for waiter in waiters:
        for step in waiter.steps:
            chosen = _first_free(pool, step, taken)
            if chosen is None:
                continue
            left = replace(chosen, free_slots=chosen.free_slots - 1)
            if left.free_slots <= 0:
                left = replace(left, ready=False, busy=True)
                free -= 1
            taken[chosen.name] = left
        if not free:
            break
    return taken


def agents_for_pass(
    pool: NamespaceAgents,
    steps: Sequence[Step] | None,
    named: Iterable[str],
    waiters: Iterable[Waiter],
) -> dict[str, AgentView]:
    """What the engine needs for a pass of a workflow with these `steps`, whose status
    names the agents `named`, behind `waiters`."""
    taken = taken_by_waiters(pool, waiters)
    out: dict[str, AgentView] = {}
    for name in named:
        view = taken.get(name) or pool.views.get(name)
        if view is not None:
            out[name] = view
    wanted = len(steps or ())
    for step in steps or ():
        found = 0
        for view in pool.free_in_order(step):
            current = taken.get(view.name, view)
            if not (current.ready and current.free_slots > 0):
                continue
            out[view.name] = current
            found += 1
            if found >= wanted:
                break
    return out


def _first_free(pool: NamespaceAgents, step: Step, taken: dict[str, AgentView]) -> AgentView | None:
    for view in pool.free_in_order(step):
        current = taken.get(view.name, view)
        if current.ready and current.free_slots > 0:
            return current
    return None
