"""Finding (or creating) the Agent object that holds an AgentKit agent id.

Agents reach Ops-Core three ways: a user declares an Agent (any name, `spec.agentId` set;
the operator labels it with `opscore.opspawn.io/agent-key`), AgentKit's registration
webhook announces it, or the agent simply starts reporting, often before the webhook.
So resolution of an id is, in order: the cached name; a GET of `agent_resource_name(id)`;
a LIST by the agent-key label; a LIST selected by `spec.agentId`; a LIST selected by
`spec.previousAgentId` (an agent AgentKit re-registered under a new id: reports still sent
under the old one belong to it); and finally a CREATE, because the first report must be
recorded, not refused. A report knows only the id, so it creates an Agent named after the
id; two reports racing meet on that name: the loser gets 409 and resolves again.

A registration (`register`) knows the agent's `agentName`, which AgentKit keeps unique and
which survives AgentKit's restarts, unlike the id. It is resolved by name first (a GET of
the names `names.agent_names_for` derives, then a LIST selected by `spec.agentName`), then
by id. Found by name under another id, the agent was re-registered: the caller moves the
Agent to the new id. Found by id only on an Agent a first report created (named after the
id), a new Agent named after `agentName` is created instead, and the operator merges the
first one into it (`opscore_logic.registration`).

Why the last LIST: a user-declared Agent gets its agent-key label from the operator, a
moment after `kubectl apply`. A report arriving in that moment would miss the label and
create a second Agent; matching `spec.agentId` closes that window. The CRD declares
`spec.agentId` a selectable field, so the API server returns only the matches (an API
server too old for that gets an unselected LIST). It costs one LIST per agent id the
sidecar has never seen (names are cached), never one per report. Created Agents carry the
`created-by` annotation so the operator can tell them from user-declared ones and merge
the rare duplicate left by the other order (a report first, the user's declaration after;
see `opscore_logic.registration`).

An object "holds" an id when its `spec.agentId` equals it, or when `spec.agentId` is unset
and its name is the id (the CRD's documented default); it "answers to" its held id and to
its `spec.previousAgentId`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from opscore_kube import AGENTS, Conflict, Invalid, NotFound, Resource
from opscore_logic.names import (
    AGENT_KEY_LABEL,
    agent_key,
    agent_names_for,
    agent_resource_name,
    normalised_agent_name,
)
from opscore_logic.registration import (
    CREATED_BY_ANNOTATION,
    CREATED_BY_REPORT,
    CREATED_BY_WEBHOOK,
    agent_id_of,
    agent_name_of,
    answers_to,
    created_by,
    preferred,
)

logger = logging.getLogger("opscore.sidecar.agents")

Body = dict[str, Any]
_CREATE_ATTEMPTS = 3


class CreateContended(Conflict):
    """Every one of `_CREATE_ATTEMPTS` creates of the Agent got 409, and each lookup after
    it still found no Agent holding the id (another creator keeps winning the name, then
    losing the object). Nothing was stored; the sidecar answers 503 with `Retry-After`
    (see `app`), because trying again shortly finds what the other creator made."""


class KubeApi(Protocol):
    """The part of `opscore_kube.KubeClient` the sidecar uses (tests pass a fake)."""

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body: ...

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Body: ...

    async def create(self, resource: Resource, namespace: str | None, body: Body) -> Body: ...

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Body,
        *,
        status: bool = False,
    ) -> Body: ...

    async def json_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        operations: Sequence[Body],
        *,
        status: bool = False,
    ) -> Body: ...

    async def readyz(self) -> bool: ...


def holds(obj: Body, agent_id: str) -> bool:
    """Whether the Agent object `obj` is the one for `agent_id`."""
    return agent_id_of(obj) == agent_id


def name_of(obj: Body) -> str:
    return str(obj["metadata"]["name"])


def is_registered_as(obj: Body, agent_name: str) -> bool:
    """Whether `obj` is the Agent of the AgentKit agent called `agent_name`: it says so in
    `spec.agentName`, and no first report created it (such an Agent is named after an id,
    and is merged into the one named after `agentName`, never kept for it)."""
    return agent_name_of(obj) == agent_name and created_by(obj) != CREATED_BY_REPORT


class AgentDirectory:
    """Maps AgentKit ids to Agent objects in one namespace, caching the names it found.

    Only names are cached, never object contents: whoever needs the object gets it from
    `find`/`ensure`, and a cached name that stopped being right is dropped on first use.
    """

    def __init__(self, kube: KubeApi, namespace: str) -> None:
        self._kube = kube
        self._namespace = namespace
        self._names: dict[str, str] = {}
        self._field_selector_works = True

    @property
    def namespace(self) -> str:
        return self._namespace

    def forget(self, agent_id: str) -> None:
        """Drop the cached name (e.g. the object was deleted under us)."""
        self._names.pop(agent_id, None)

    async def find(self, agent_id: str) -> Body | None:
        """The Agent object for `agent_id`, or None if there is none (never creates)."""
        found, _ = await self._lookup(agent_id)
        return found

    async def ensure(
        self, agent_id: str, spec: Body | None = None, *, source: str = CREATED_BY_REPORT
    ) -> tuple[Body, bool]:
        """The Agent object for `agent_id`, creating it (with `spec`) if missing.

        Returns (object, created). The created object's spec is `{agentId, **spec}`, and
        its `created-by` annotation says `source` (how the agent was first seen).
        """
        for _ in range(_CREATE_ATTEMPTS):
            found, name_taken = await self._lookup(agent_id)
            if found is not None:
                return found, False
            try:
                created = await self._create(
                    agent_id,
                    spec or {},
                    name=None if name_taken else agent_resource_name(agent_id),
                    source=source,
                )
            except Conflict:
                logger.debug("Agent created concurrently, resolving again", extra=_x(agent_id))
                continue
            self._names[agent_id] = name_of(created)
            logger.info(
                "Agent created on first contact",
                extra={**_x(agent_id), "agent": name_of(created)},
            )
            return created, True
        raise CreateContended(
            409, "Conflict", f"could not create an Agent for {agent_id!r}: every create conflicted"
        )

    async def register(self, spec: Body) -> tuple[Body, bool]:
        """The Agent a registration (`spec` with agentId and agentName) belongs to, creating
        it, named after agentName, when there is none. Returns (object, created); the caller
        patches an existing object with the registration (which may carry a new id)."""
        agent_id = str(spec["agentId"])
        agent_name = spec.get("agentName")
        if not isinstance(agent_name, str) or normalised_agent_name(agent_name) is None:
            return await self.ensure(agent_id, spec, source=CREATED_BY_WEBHOOK)
        for _ in range(_CREATE_ATTEMPTS):
            found, free = await self._lookup_name(agent_name, agent_id)
            if found is not None:
                return found, False
            by_id = await self.find(agent_id)
            if by_id is not None and created_by(by_id) != CREATED_BY_REPORT:
                return by_id, False  # declared by a user (or registered without a name)
            try:
                created = await self._create(agent_id, spec, name=free, source=CREATED_BY_WEBHOOK)
            except Conflict:
                logger.debug("Agent created concurrently, resolving again", extra=_x(agent_id))
                continue
            self._names[agent_id] = name_of(created)
            return created, True
        raise CreateContended(
            409,
            "Conflict",
            f"could not create an Agent for {agent_name!r}: every create conflicted",
        )

    def remember(self, agent_id: str, name: str) -> None:
        """Cache that `name` holds `agent_id` (after a registration moved it there)."""
        self._names[agent_id] = name

    async def _lookup_name(self, agent_name: str, agent_id: str) -> tuple[Body | None, str | None]:
        """(the Agent registered as `agent_name` or None, the first derived name nobody
        holds, or None when all are taken)."""
        free: str | None = None
        for name in agent_names_for(agent_name, agent_id):
            obj = await self._get(name)
            if obj is None:
                free = free or name
            elif is_registered_as(obj, agent_name):
                return obj, None
        listed = await self._by_spec_field("agentName", agent_name)
        matches = [item for item in listed if is_registered_as(item, agent_name)]
        if not matches:
            return None, free
        chosen = preferred(sorted(matches, key=_age_key))
        assert chosen is not None
        return chosen, None

    async def _lookup(self, agent_id: str) -> tuple[Body | None, bool]:
        """(object or None, whether agent_resource_name(id) is held by another agent)."""
        name = agent_resource_name(agent_id)
        cached = self._names.get(agent_id)
        if cached is not None and cached != name:
            obj = await self._get(cached)
            if obj is not None and answers_to(obj, agent_id):
                return obj, False
            self.forget(agent_id)
        obj = await self._get(name)
        if obj is not None and answers_to(obj, agent_id):
            self._names[agent_id] = name
            return obj, False
        name_taken = obj is not None
        listed = await self._kube.list(
            AGENTS, self._namespace, label_selector=f"{AGENT_KEY_LABEL}={agent_key(agent_id)}"
        )
        matches = [item for item in listed.get("items") or [] if holds(item, agent_id)]
        if not matches:
            # A user-declared Agent the operator has not labelled yet (see module docstring).
            listed_by_id = await self._by_spec_field("agentId", agent_id)
            matches = [item for item in listed_by_id if holds(item, agent_id)]
        if not matches:
            # An agent AgentKit re-registered under a new id: its old id still resolves.
            listed_by_old = await self._by_spec_field("previousAgentId", agent_id)
            matches = [item for item in listed_by_old if answers_to(item, agent_id)]
        if not matches:
            self.forget(agent_id)
            return None, name_taken
        if len(matches) > 1:
            logger.warning(
                "Several Agents hold one agentId; using the one the operator keeps",
                extra={**_x(agent_id), "agents": sorted(name_of(m) for m in matches)},
            )
        chosen = preferred(sorted(matches, key=_age_key))
        assert chosen is not None
        self._names[agent_id] = name_of(chosen)
        return chosen, name_taken

    async def _by_spec_field(self, field: str, value: str) -> list[Body]:
        """Agents whose `spec.<field>` may be `value` (callers filter): one field-selected
        LIST (the CRD declares agentId, previousAgentId and agentName selectable), or every
        Agent on an API server too old for selectable fields (it answers 400)."""
        if self._field_selector_works:
            try:
                listed = await self._kube.list(
                    AGENTS, self._namespace, field_selector=f"spec.{field}={_escape(value)}"
                )
            except Invalid:
                self._field_selector_works = False
                logger.info("The API server cannot select Agents by spec.agentId; listing all")
            else:
                return list(listed.get("items") or [])
        listed = await self._kube.list(AGENTS, self._namespace)
        return list(listed.get("items") or [])

    async def _get(self, name: str) -> Body | None:
        try:
            return await self._kube.get(AGENTS, self._namespace, name)
        except NotFound:
            return None

    async def _create(self, agent_id: str, spec: Body, *, name: str | None, source: str) -> Body:
        """Create the Agent as `name`; with None (every name we would choose is held by
        another agent: a crafted collision, or a user's object) the API server picks a
        unique one from the first choice, and the label finds it later."""
        metadata: Body = {
            "namespace": self._namespace,
            "labels": {AGENT_KEY_LABEL: agent_key(agent_id)},
            "annotations": {CREATED_BY_ANNOTATION: source},
        }
        if name is None:
            agent_name = spec.get("agentName")
            first = agent_names_for(agent_name if isinstance(agent_name, str) else None, agent_id)
            metadata["generateName"] = first[0][:57].rstrip("-") + "-"
        else:
            metadata["name"] = name
        body: Body = {
            "apiVersion": AGENTS.api_version,
            "kind": "Agent",
            "metadata": metadata,
            "spec": {**spec, "agentId": agent_id},
        }
        return await self._kube.create(AGENTS, self._namespace, body)


def _escape(value: str) -> str:
    """A field selector value, escaped as Kubernetes' `fields.EscapeValue` does."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _age_key(obj: Body) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("creationTimestamp") or ""), str(metadata.get("name") or "")


def _x(agent_id: str) -> dict[str, str]:
    return {"agent_id": agent_id}
