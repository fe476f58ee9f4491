"""How the engine sees agents: parsed Agent objects joined with the operator's ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from opscore_logic.agent_model import AgentSpec, AgentState, AgentStatus
from opscore_logic.lifecycle import Workload, observed_state, readiness
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


def parse_agent(cache: ObjectCache, key: Key) -> ParsedAgent | None:
    """The parsed Agent, memoised per resourceVersion (parsing is the costly part)."""
    body = cache.get(key)
    if body is None:
        return None
    version = cache.version(body)
    memo = cache.memo(key)
    if memo is not None and memo[0] == version and version is not None:
        parsed: ParsedAgent = memo[1]
        return parsed
    meta: dict[str, Any] = body.get("metadata", {})
    try:
        spec = AgentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        spec = AgentSpec()
    try:
        status = AgentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        status = AgentStatus()
    parsed = ParsedAgent(spec, status, dict(meta.get("labels") or {}), meta.get("generation"))
    cache.remember(key, version, parsed)
    return parsed


def agent_views(
    *,
    cache: ObjectCache,
    ledger: Ledger,
    missing: Mapping[Key, str],
    namespace: str,
    now: datetime,
) -> dict[str, AgentView]:
    views: dict[str, AgentView] = {}
    for body in cache.in_namespace(namespace):
        name = body["metadata"]["name"]
        key = (namespace, name)
        parsed = parse_agent(cache, key)
        if parsed is None:
            continue
        spec, status = parsed.spec, parsed.status
        active = ledger.active(key)
        state = observed_state(spec, status.reports, now)
        workload = Workload(active_tasks=active, missing_reason=missing.get(key))
        ready, reason, _ = readiness(spec, status.reports, workload, now)
        views[name] = AgentView(
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
            reports=tuple(status.reports),
        )
    return views


def after_waiters(views: dict[str, AgentView], waiters: list[Waiter]) -> dict[str, AgentView]:
    """The agents left once the waiters ahead (higher priority, older) take what fits them.

    A greedy simulation of what those workflows will get when they are reconciled, so a
    younger workflow does not take an agent an older one is waiting for.
    """
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
