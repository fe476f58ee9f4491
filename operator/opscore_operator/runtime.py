"""Everything the operator holds while it runs, wired together, and how watch events
feed it. Kopf delivers the events (see `handlers.py`); this decides whom to wake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import start_http_server

from opscore_kube import KubeClient
from opscore_operator.agentkit import AgentKitClient
from opscore_operator.agents import AgentReconciler
from opscore_operator.events import EventRecorder
from opscore_operator.ledger import Ledger
from opscore_operator.settings import OperatorSettings
from opscore_operator.store import Key, ObjectCache, key_of
from opscore_operator.waiting import WaitingRoom
from opscore_operator.workflows import WorkflowReconciler
from opscore_operator.workqueue import WorkQueue

logger = logging.getLogger("opscore.runtime")


class Runtime:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.kube = KubeClient.from_kubeconfig(
            settings.kubeconfig, qps=settings.api_qps, burst=settings.api_burst
        )
        self.agentkit = AgentKitClient(
            settings.agentkit_url,
            timeout=settings.dispatch_timeout_seconds,
            attempts=settings.dispatch_attempts,
        )
        self.workflows = ObjectCache()
        self.agents = ObjectCache()
        self.templates = ObjectCache()
        self.ledger = Ledger()
        self.waiting = WaitingRoom()
        self.missing_agents: dict[Key, str] = {}
        self.workflow_queue: WorkQueue[Key] = WorkQueue()
        self.agent_queue: WorkQueue[Key] = WorkQueue()
        self.recorder = EventRecorder(self.kube, post_normal=settings.post_normal_events)
        self.workflow_reconciler = WorkflowReconciler(
            kube=self.kube,
            agentkit=self.agentkit,
            workflows=self.workflows,
            agents=self.agents,
            templates=self.templates,
            ledger=self.ledger,
            waiting=self.waiting,
            missing_agents=self.missing_agents,
            queue=self.workflow_queue,
            agent_queue=self.agent_queue,
            recorder=self.recorder,
        )
        self.agent_reconciler = AgentReconciler(
            kube=self.kube,
            agents=self.agents,
            ledger=self.ledger,
            missing_agents=self.missing_agents,
            queue=self.agent_queue,
            workflow_queue=self.workflow_queue,
            recorder=self.recorder,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.recorder.start()
        for index in range(self.settings.workers):
            self._tasks.append(
                asyncio.create_task(self.workflow_reconciler.worker(), name=f"workflow-{index}")
            )
        for index in range(2):
            self._tasks.append(
                asyncio.create_task(self.agent_reconciler.worker(), name=f"agent-{index}")
            )
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port)
        logger.info(
            "Ops-Core operator started: %d workflow workers, AgentKit at %s",
            self.settings.workers,
            self.settings.agentkit_url,
        )

    async def stop(self) -> None:
        self.workflow_queue.close()
        self.agent_queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.workflow_reconciler.drain()
        await self.recorder.stop()
        await self.agentkit.aclose()
        await self.kube.aclose()

    # -- watch events -------------------------------------------------------------------

    def on_workflow(self, event_type: str | None, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.workflows.delete(obj)
        else:
            self.workflows.upsert(obj)
        self.workflow_queue.add(key_of(obj))

    def on_agent(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.agents.delete(obj)
            self.missing_agents.pop(key, None)
        elif not self.agents.upsert(obj):
            return
        # The heartbeat path: a report on this agent may finish a step. Wake its workflows
        # first, then whoever waits for an agent it could take.
        for workflow in self.ledger.workflows_on(key):
            self.workflow_queue.add(workflow)
        if event_type != "DELETED":
            self.agent_queue.add(key)
            self.workflow_reconciler.wake_waiters(key[0], {key[1]})

    def on_template(self, event_type: str | None, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.templates.delete(obj)
        else:
            self.templates.upsert(obj)
        namespace, name = key_of(obj)
        for key in self.workflows.snapshot_keys():
            body = self.workflows.get(key)
            if key[0] == namespace and body is not None:
                ref = (body.get("spec") or {}).get("templateRef") or {}
                if ref.get("name") == name and not (body.get("status") or {}).get("phase"):
                    self.workflow_queue.add(key)
