"""How the engine sees agents: parsed Agent objects joined with the operator's ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from opscore_logic.agent_model import AgentReport, AgentSpec, AgentState, AgentStatus
from opscore_logic.lifecycle import Workload, heartbeat_deadline, observed_state, readiness
from opscore_logic.selection import AgentView, select_agent
from opscore_operator.ledger import Ledger
from opscore_operator.store import Key, ObjectCache
from opscore_operator.waiting import Waiter


@dataclass(frozen=True, slots=True)
class ParsedAgent:
    spec: AgentSpec
    status: AgentStatus
    labels: dict[str, str]
    generation: int | None


@dataclass(frozen=True, slots=True)
class AgentBasics:
    """What an agent's view reads, memoised per resourceVersion. Not the whole parsed
    status: its conditions and counters (most of its memory) only the agent reconciler
    reads, once per pass."""

    spec: AgentSpec
    reports: tuple[AgentReport, ...]
    labels: dict[str, str]
    generation: int | None


def agent_basics(cache: ObjectCache, key: Key) -> AgentBasics | None:
    body = cache.get(key)
    if body is None:
        return None
    version = cache.version(body)
    memo = cache.memo(key)
    if memo is not None and memo[0] == version and version is not None:
        basics: AgentBasics = memo[1]
        return basics
    meta: dict[str, Any] = body.get("metadata", {})
    try:
        spec = AgentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        spec = AgentSpec()
    basics = AgentBasics(
        spec, tuple(_status(body).reports), dict(meta.get("labels") or {}), meta.get("generation")
    )
    cache.remember(key, version, basics)
    return basics


def parse_agent(cache: ObjectCache, key: Key) -> ParsedAgent | None:
    """The parsed Agent: spec memoised per resourceVersion, status parsed afresh."""
    basics = agent_basics(cache, key)
    body = cache.get(key)
    if basics is None or body is None:
        return None
    return ParsedAgent(basics.spec, _status(body), basics.labels, basics.generation)


def _status(body: dict[str, Any]) -> AgentStatus:
    try:
        return AgentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return AgentStatus()


def agent_view(
    *,
    cache: ObjectCache,
    ledger: Ledger,
    missing: Mapping[Key, str],
    key: Key,
    now: datetime,
) -> tuple[AgentView | None, datetime | None]:
    """One agent's view at `now`, and its heartbeat deadline: the view stays the same
    until then (unless the Agent, its tasks in flight or its AgentKit mark change)."""
    parsed = agent_basics(cache, key)
    if parsed is None:
        return None, None
    name = key[1]
    spec, reports = parsed.spec, parsed.reports
    active = ledger.active(key)
    state = observed_state(spec, reports, now)
    workload = Workload(
        active_tasks=active,
        missing_reason=missing.get(key),
        last_dispatch_at=ledger.last_dispatch.get(key),
        last_end_at=ledger.last_end.get(key),
    )
    ready, reason, _ = readiness(spec, reports, workload, now)
    view = AgentView(
        name=name,
        agent_id=spec.agent_id or name,
        agent_name=spec.agent_name,
        capabilities=frozenset(spec.capabilities),
        labels=parsed.labels,
        ready=ready,
        busy=reason == "Busy",
        free_slots=max(0, spec.max_concurrent_tasks - active) if ready else 0,
        offline=state is AgentState.OFFLINE,
        last_dispatch_at=ledger.last_dispatch.get(key),
        reports=reports,
        tasks_in_flight=active,
    )
    return view, heartbeat_deadline(spec, reports)


def agent_views(
    *,
    cache: ObjectCache,
    ledger: Ledger,
    missing: Mapping[Key, str],
    namespace: str,
    now: datetime,
) -> dict[str, AgentView]:
    """Every agent of the namespace, built from scratch: the reference `AgentPools`
    keeps equal incrementally."""
    views: dict[str, AgentView] = {}
    for body in cache.in_namespace(namespace):
        name = body["metadata"]["name"]
        view, _ = agent_view(
            cache=cache, ledger=ledger, missing=missing, key=(namespace, name), now=now
        )
        if view is not None:
            views[name] = view
    return views


def after_waiters(views: dict[str, AgentView], waiters: Iterable[Waiter]) -> dict[str, AgentView]:
    """The agents left once the waiters ahead (higher priority, older) take what fits them.

    A greedy simulation of what those workflows will get when they are reconciled, so a
    younger workflow does not take an agent an older one is waiting for. (The reference
    for `candidates.agents_for_pass`, which does the same from the indexed pool.)
    """
    waiters = list(waiters)
    if not waiters:
        return views
    left = dict(views)
    for waiter in waiters:
        for step in waiter.steps:
            chosen = select_agent(step, left.values())
            if chosen is None:
                continue
            left[chosen.name] = replace(chosen, free_slots=chosen.free_slots - 1)
            if left[chosen.name].free_slots <= 0:
                left[chosen.name] = replace(left[chosen.name], ready=False, busy=True)
        if not any(v.ready and v.free_slots > 0 for v in left.values()):
            break
    return left
