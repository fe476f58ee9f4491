"""Optional discovery by polling AgentKit's `GET /v1/agents` (`OPSCORE_AGENTKIT_POLL_SECONDS`).

The real AgentKit has no list endpoint (it answers 404), so discovery normally comes from
its registration webhook, from first contact on the state endpoint and from user-declared
Agents. The webhook is sent once and never retried, though; where an AgentKit does list
its agents, polling repairs a lost webhook:

- an agent AgentKit lists and no Agent holds (by id, or by agentName: a re-registered
  agent's Agent is moved to its new id by the webhook, not here) gets an Agent named like
  the webhook would name it, after its agentName (`names.agent_names_for`), annotated
  `created-by: agentkit-poll`, with the registration fields;
- an existing Agent gets registration fields it lacks (never overwriting any: the
  webhook, not polling, is where AgentKit's updates come from);
- an Agent marked `NotRegisteredInAgentKit` whose id AgentKit lists is unmarked.

A 404 is logged once and then ignored: polling stays quiet against the real AgentKit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opscore_kube import AGENTS, Conflict, KubeApiError, KubeClient
from opscore_logic.names import AGENT_KEY_LABEL, agent_key, agent_names_for
from opscore_logic.registration import (
    CREATED_BY_ANNOTATION,
    CREATED_BY_POLL,
    agent_name_of,
    registration_fill,
    registration_spec,
)
from opscore_operator.agent_reconciler import AgentIndex
from opscore_operator.agentkit import AgentKitClient
from opscore_operator.agentkit_marks import MissingInAgentKit
from opscore_operator.store import Key, ObjectCache
from opscore_operator.workqueue import WorkQueue

logger = logging.getLogger("opscore.discovery")


class AgentKitPoller:
    """Polls AgentKit's agent list and reconciles Agents with it (see module docstring)."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        agentkit: AgentKitClient,
        agents: ObjectCache,
        index: AgentIndex,
        missing: MissingInAgentKit,
        agent_queue: WorkQueue[Key],
        namespace: str,
        interval: float,
    ) -> None:
        self.kube = kube
        self.agentkit = agentkit
        self.agents = agents
        self.index = index
        self.missing = missing
        self.agent_queue = agent_queue
        self.namespace = namespace
        self.interval = interval
        self._absent_logged = False

    async def run(self) -> None:
        """Poll forever, `interval` apart; one failed round never stops the next."""
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("polling AgentKit's agent list failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def poll_once(self) -> int:
        """One round; returns how many Agents it created or changed."""
        answer = await self.agentkit.list_agents()
        if answer.outcome == "absent":
            if not self._absent_logged:
                self._absent_logged = True
                logger.info(
                    "AgentKit has no GET /v1/agents (404): discovery relies on its webhook, "
                    "first reports and declared Agents; polling stays quiet"
                )
            return 0
        if answer.outcome == "error":
            logger.debug("polling AgentKit's agent list: %s", answer.detail)
            return 0
        changed = 0
        for details in answer.agents:
            try:
                changed += await self._reconcile_one(details)
            except KubeApiError as exc:
                logger.warning("discovered agent %r not recorded: %s", details.get("agentId"), exc)
        return changed

    async def _reconcile_one(self, details: dict[str, Any]) -> int:
        spec = registration_spec(details)
        if spec is None:
            return 0
        agent_id = str(spec["agentId"])
        names = sorted(self.index.holders(self.namespace, agent_id))
        if not names:
            if self._registered_as(spec.get("agentName")):
                return 0
            await self._create(agent_id, spec)
            return 1
        changed = 0
        for name in names:
            key = (self.namespace, name)
            body = self.agents.get(key)
            if body is None:
                continue
            if self.missing.clear(key):
                logger.info("agent %s is listed by AgentKit again", name)
                self.agent_queue.add(key)
            fill = registration_fill(body.get("spec") or {}, spec)
            if fill:
                self.agents.upsert(await self.kube.patch(AGENTS, *key, {"spec": fill}))
                changed += 1
        return changed

    def _registered_as(self, agent_name: object) -> bool:
        """Whether an Agent already says it is `agent_name` (under another id: AgentKit
        re-registered it, and the webhook, not polling, moves it to the new id)."""
        if not isinstance(agent_name, str):
            return False
        return any(
            agent_name_of(body) == agent_name for body in self.agents.in_namespace(self.namespace)
        )

    async def _create(self, agent_id: str, spec: dict[str, Any]) -> None:
        agent_name = spec.get("agentName")
        candidates = agent_names_for(agent_name if isinstance(agent_name, str) else None, agent_id)
        metadata: dict[str, Any] = {
            "namespace": self.namespace,
            "labels": {AGENT_KEY_LABEL: agent_key(agent_id)},
            "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_POLL},
        }
        free = [name for name in candidates if self.agents.get((self.namespace, name)) is None]
        if free:
            metadata["name"] = free[0]
        else:
            metadata["generateName"] = candidates[0][:57].rstrip("-") + "-"
        body = {
            "apiVersion": AGENTS.api_version,
            "kind": "Agent",
            "metadata": metadata,
            "spec": spec,
        }
        try:
            created = await self.kube.create(AGENTS, self.namespace, body)
        except Conflict:
            return  # the sidecar created it a moment ago; the next round fills it in
        self.agents.upsert(created)
        self.index.note(created)
        logger.info("agent %r discovered by polling AgentKit", agent_id)
