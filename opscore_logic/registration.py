"""One Agent per AgentKit agent id, whichever way the agent arrived.

Agents reach Ops-Core three ways, in any order: a user declares an Agent with kubectl (any
name, `spec.agentId` set), AgentKit's registration webhook announces it, or the agent
simply starts reporting (often before the webhook). The sidecar creates an Agent for the
last two when none holds the id yet, marked with the `created-by` annotation: the webhook
names it after the agent's `agentName` (`names.agent_names_for`), a first report, which
knows only the id, after the id (`names.agent_resource_name`).

AgentKit's names are unique and survive its restarts; its ids do not (a restarted
AgentKit gives a re-registering agent a new id). So a registration is matched to an Agent
by `agentName` first, then by id; a match under another id is the same agent re-registered:
its Agent takes the new id and keeps the old one in `spec.previousAgentId`, so reports still
sent under it are not lost (`answers_to`).

Two Agents can still end up holding one id: the agent reported (or was announced) first,
then a user declared it under a name of their own; or it reported before its registration,
which then created the Agent named after `agentName`. The operator resolves that by
merging: the user's Agent is kept (it carries intent: its name, `paused`, heartbeat
timeout, ...), else one the registration created (it has the name people chose), else the
oldest; each other Agent Ops-Core created for the id is absorbed into the keeper
(registration fields it lacks are copied over, so are its reports and counters) and then
deleted. Two
Agents that users declared for one id are a conflict Ops-Core does not guess about: both
stay, the oldest one gets the reports, and a Warning event says so.

This module holds the pure rules; the operator and the sidecar do the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

CREATED_BY_ANNOTATION = "opscore.opspawn.io/created-by"
CREATED_BY_REPORT = "first-report"
CREATED_BY_WEBHOOK = "agentkit-webhook"
CREATED_BY_POLL = "agentkit-poll"

# Spec fields AgentKit's registration sets (webhook or polling); other fields (paused,
# heartbeatTimeoutSeconds, maxConcurrentTasks) are the user's alone.
REGISTRATION_FIELDS = ("agentName", "version", "capabilities", "contactEndpoint", "description")

Body = Mapping[str, Any]


def agent_id_of(obj: Body) -> str:
    """The AgentKit id an Agent object holds: `spec.agentId`, else its name (the CRD's
    documented default)."""
    spec_id = (obj.get("spec") or {}).get("agentId")
    if spec_id:
        return str(spec_id)
    return str((obj.get("metadata") or {}).get("name") or "")


def previous_agent_id_of(obj: Body) -> str | None:
    """The id the agent had before AgentKit last gave it a new one (or None)."""
    value = (obj.get("spec") or {}).get("previousAgentId")
    return str(value) if value else None


def answers_to(obj: Body, agent_id: str) -> bool:
    """Whether reports sent under `agent_id` belong on this Agent: its current id, or the
    one it had before its latest re-registration."""
    return agent_id_of(obj) == agent_id or previous_agent_id_of(obj) == agent_id


def agent_name_of(obj: Body) -> str | None:
    value = (obj.get("spec") or {}).get("agentName")
    return str(value) if value else None


def created_by(obj: Body) -> str | None:
    """How Ops-Core came to create this Agent, or None when a user declared it."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(CREATED_BY_ANNOTATION)
    return str(value) if value else None


@dataclass(frozen=True, slots=True)
class Holder:
    """One Agent object holding an agent id, as far as the merge rule cares."""

    name: str
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)
    user_declared: bool
    first_contact: bool = False  # created by a report, before any registration named it

    @classmethod
    def of(cls, obj: Body) -> Holder:
        meta = obj.get("metadata") or {}
        return cls(
            name=str(meta.get("name") or ""),
            created=str(meta.get("creationTimestamp") or ""),
            user_declared=created_by(obj) is None,
            first_contact=created_by(obj) == CREATED_BY_REPORT,
        )


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What to do with several Agents holding one id."""

    keeper: str
    absorb: tuple[str, ...] = ()  # Ops-Core-created duplicates to merge into the keeper
    conflicts: tuple[str, ...] = ()  # other user-declared Agents (left alone, warned about)


def merge_plan(holders: Iterable[Holder]) -> MergePlan | None:
    """Which Agent keeps the id: the oldest user-declared one, else the oldest one a
    registration created (named after agentName), else the oldest of all (ties by name, so
    every process decides the same). None for fewer than two holders."""
    ordered = sorted(
        holders, key=lambda h: (not h.user_declared, h.first_contact, h.created, h.name)
    )
    if len(ordered) < 2:
        return None
    keeper, rest = ordered[0], ordered[1:]
    return MergePlan(
        keeper=keeper.name,
        absorb=tuple(h.name for h in rest if not h.user_declared),
        conflicts=tuple(h.name for h in rest if h.user_declared),
    )


B = TypeVar("B", bound=Mapping[str, Any])


def preferred(objs: Iterable[B]) -> B | None:
    """The Agent the sidecar should write to among several holding one id (the keeper
    `merge_plan` picks, so reports go where they will stay)."""
    items = list(objs)
    if not items:
        return None
    plan = merge_plan(Holder.of(o) for o in items)
    if plan is None:
        return items[0]
    return next(o for o in items if Holder.of(o).name == plan.keeper)


def registration_fill(keeper_spec: Body, donor_spec: Body) -> dict[str, Any]:
    """Registration fields the donor knows and the keeper lacks (the keeper's own values,
    set by the user or by AgentKit, are never overwritten)."""
    fill: dict[str, Any] = {}
    for field in REGISTRATION_FIELDS:
        value = donor_spec.get(field)
        if value in (None, "", []):
            continue
        if keeper_spec.get(field) in (None, "", []):
            fill[field] = value
    return fill


MAX_DESCRIPTION_LENGTH = 1024  # the Agent CRD's spec.description maxLength


def registration_spec(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """Agent spec fields from AgentKit's description of an agent (an item of
    `GET /v1/agents`, shaped like the webhook's `agent_details`); None without a usable
    `agentId`. Values of the wrong type are left out rather than failing the whole agent."""
    agent_id = details.get("agentId")
    if not isinstance(agent_id, str) or not agent_id or len(agent_id) > 253:
        return None
    spec: dict[str, Any] = {"agentId": agent_id}
    for field in ("agentName", "version", "contactEndpoint"):
        value = details.get(field)
        if isinstance(value, str) and value:
            spec[field] = value
    capabilities = details.get("capabilities")
    if isinstance(capabilities, list):
        spec["capabilities"] = [c for c in capabilities if isinstance(c, str)][:64]
    metadata = details.get("metadata")
    if isinstance(metadata, Mapping):
        description = metadata.get("description")
        if isinstance(description, str):
            spec["description"] = description[:MAX_DESCRIPTION_LENGTH]
    return spec
