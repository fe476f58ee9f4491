"""Everything the operator holds while it runs, wired together, and how watch events
feed it. Its informers deliver the events (`informer.py`); this decides whom to wake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import start_http_server
from pydantic import ValidationError

from opscore_kube import (
    AGENTS,
    APPROVALS,
    WORKFLOW_SCHEDULES,
    WORKFLOW_TEMPLATES,
    WORKFLOWS,
    KubeApiError,
    KubeClient,
    Resource,
)
from opscore_logic.registration import agent_id_of
from opscore_logic.workflow_model import WorkflowPhase, WorkflowStatus
from opscore_operator import metrics
from opscore_operator.agent_reconciler import (
    AGENT_STATUS_DEBOUNCE_SECONDS,
    AgentIndex,
    AgentReconciler,
)
from opscore_operator.agentkit import AgentKitClient
from opscore_operator.agentkit_marks import (
    NOT_REGISTERED_REASON,
    AgentKitReachability,
    MissingInAgentKit,
)
from opscore_operator.approval_book import ApprovalBook
from opscore_operator.discovery import AgentKitPoller
from opscore_operator.events import EventRecorder
from opscore_operator.informer import Deliver, Informer
from opscore_operator.leadership import ElectionConfig, LeaderElector
from opscore_operator.ledger import Ledger
from opscore_operator.run_spans import RunSpans
from opscore_operator.schedule_reconciler import ScheduleReconciler
from opscore_operator.settings import OperatorSettings
from opscore_operator.store import Key, ObjectCache, key_of
from opscore_operator.tracing import start_tracing, stop_tracing, tracer_of
from opscore_operator.waiting import WaitingRoom
from opscore_operator.workflow_reconciler import WorkflowReconciler
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
        # None unless an OTLP endpoint is configured (OTEL_* variables; tracing.py).
        self.tracing = start_tracing("opscore-operator")
        self.workflows = ObjectCache()
        self.agents = ObjectCache()
        self.templates = ObjectCache()
        self.schedules = ObjectCache()
        self.approvals = ApprovalBook()
        self.ledger = Ledger()
        self.waiting = WaitingRoom()
        self.missing_agents = MissingInAgentKit()
        self.reachability = AgentKitReachability()
        self.agent_index = AgentIndex()
        self.workflow_queue: WorkQueue[Key] = WorkQueue()
        self.agent_queue: WorkQueue[Key] = WorkQueue()
        self.schedule_queue: WorkQueue[Key] = WorkQueue()
        self.recorder = EventRecorder(
            self.kube,
            post_normal=settings.post_normal_events,
            post_progress=settings.progress_events,
            normal_per_second=settings.normal_events_per_second,
            normal_burst=settings.normal_event_burst,
        )
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
            reachability=self.reachability,
            may_act=self.may_act,
            default_step_timeout_seconds=settings.default_step_timeout_seconds,
            approvals=self.approvals,
            spans=RunSpans(tracer_of(self.tracing)),
        )
        self.agent_reconciler = AgentReconciler(
            kube=self.kube,
            agents=self.agents,
            ledger=self.ledger,
            missing_agents=self.missing_agents,
            queue=self.agent_queue,
            workflow_queue=self.workflow_queue,
            recorder=self.recorder,
            index=self.agent_index,
        )
        self.schedule_reconciler = ScheduleReconciler(
            kube=self.kube,
            schedules=self.schedules,
            workflows=self.workflows,
            queue=self.schedule_queue,
            recorder=self.recorder,
            may_act=self.may_act,
        )
        self.poller: AgentKitPoller | None = None
        if settings.agentkit_poll_seconds > 0:
            if settings.namespace:
                self.poller = AgentKitPoller(
                    kube=self.kube,
                    agentkit=self.agentkit,
                    agents=self.agents,
                    index=self.agent_index,
                    missing=self.missing_agents,
                    agent_queue=self.agent_queue,
                    namespace=settings.namespace,
                    interval=settings.agentkit_poll_seconds,
                )
            else:
                logger.warning(
                    "OPSCORE_AGENTKIT_POLL_SECONDS is set but OPSCORE_NAMESPACE is not: "
                    "polling AgentKit stays off (it needs a namespace to create Agents in)"
                )
        self._tasks: list[asyncio.Task[None]] = []
        # Set once the informers' first listings are in the caches (see `sync`): no
        # reconcile runs before, so none decides from half the picture.
        self.synced = asyncio.Event()
        # Set while this process may act: at once without leader election, else while it
        # holds the Lease. A standby lists and watches like a leader (its caches stay
        # warm, its queues fill) but no worker runs, so it writes and sends nothing.
        self.acting = asyncio.Event()
        self.elector: LeaderElector | None = None

    def start(self, namespaces: list[str | None]) -> None:
        self.recorder.start()
        if self.settings.leader_election:
            self.elector = self._elector(namespaces)
            self._tasks.append(asyncio.create_task(self._lead(self.elector), name="leader"))
        else:
            self.acting.set()
        for index in range(self.settings.workers):
            self._tasks.append(
                asyncio.create_task(
                    self._once_synced(self.workflow_reconciler.worker), name=f"workflow-{index}"
                )
            )
        for index in range(2):
            self._tasks.append(
                asyncio.create_task(
                    self._once_synced(self.agent_reconciler.worker), name=f"agent-{index}"
                )
            )
        self._tasks.append(
            asyncio.create_task(
                self._once_synced(self.schedule_reconciler.worker), name="schedule-0"
            )
        )
        if self.poller is not None:
            self._tasks.append(
                asyncio.create_task(self._once_synced(self.poller.run), name="agentkit-poller")
            )
        metrics.register(self)
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port)
        logger.info(
            "Ops-Core operator started: %d workflow workers, AgentKit at %s",
            self.settings.workers,
            self.settings.agentkit_url,
        )

    def may_act(self) -> bool:
        """Checked right before a dispatch goes out: a leader whose renewals lapsed (or that
        was paused past its renew deadline) must not send, even before it noticed."""
        return self.elector.may_act() if self.elector is not None else True

    def _elector(self, namespaces: list[str | None]) -> LeaderElector:
        settings = self.settings
        namespace = (
            settings.leader_election_namespace
            or settings.namespace
            or next((ns for ns in namespaces if ns), None)
        )
        if namespace is None:
            raise ValueError(
                "OPSCORE_LEADER_ELECTION needs a namespace for its Lease: set "
                "OPSCORE_LEADER_ELECTION_NAMESPACE (cluster-wide operators have no default)"
            )
        config = ElectionConfig(
            namespace=namespace,
            lease_name=settings.leader_election_lease_name,
            identity=settings.leader_election_identity or "",
            lease_duration=settings.lease_duration_seconds,
            renew_deadline=settings.renew_deadline_seconds,
            retry_period=settings.retry_period_seconds,
        )
        return LeaderElector(kube=self.kube, config=config, on_lost=_exit_on_lost_lease)

    async def _lead(self, elector: LeaderElector) -> None:
        logger.info(
            "standing by for Lease %s/%s as %s",
            elector.config.namespace,
            elector.config.lease_name,
            elector.identity,
        )
        waiting = asyncio.create_task(elector.leading.wait())
        running = asyncio.create_task(elector.run())
        try:
            await asyncio.wait({waiting, running}, return_when=asyncio.FIRST_COMPLETED)
            if elector.leading.is_set():
                await self.synced.wait()
                self._take_over()
                self.acting.set()
            await running
        finally:
            waiting.cancel()
            running.cancel()

    def _take_over(self) -> None:
        """Leading now, with the caches warm: rebuild the ledger from the statuses the
        previous leader wrote (the one built at sync is stale), and look at every
        Workflow and Agent once, as a restarted operator would."""
        statuses: dict[Key, WorkflowStatus] = {}
        for key in self.workflows.snapshot_keys():
            body = self.workflows.get(key)
            if body is None:
                continue
            try:
                statuses[key] = WorkflowStatus.model_validate(body.get("status") or {})
            except ValidationError:
                continue  # its reconcile starts it afresh
            self.workflow_queue.add(key)
        self.ledger.rebuild(statuses)
        for key in self.agents.snapshot_keys():
            self.agent_queue.add(key)
        for key in self.schedules.snapshot_keys():
            self.schedule_queue.add(key)
        logger.info(
            "took over: %d workflows, %d tasks in flight",
            len(statuses),
            self.ledger.total_in_flight(),
        )

    async def stop(self) -> None:
        self.acting.clear()
        self.workflow_queue.close()
        self.agent_queue.close()
        self.schedule_queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.workflow_reconciler.drain()
        if self.elector is not None:
            # Only now that nothing of ours runs: the standby may take over at once.
            await self.elector.release()
        await self.recorder.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):  # queued Events, but never a stuck shutdown
                await self.recorder.flush()
        await self.agentkit.aclose()
        await self.kube.aclose()
        await stop_tracing(self.tracing)

    async def _once_synced(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` once the caches are synced and this process may act."""
        await self.synced.wait()
        await self.acting.wait()
        await work()

    def informers(self, namespaces: list[str | None]) -> list[Informer]:
        """One per watched kind and namespace, templates first (a Workflow's first pass
        may need its template)."""
        kinds: list[tuple[Resource, Deliver, Callable[[], Iterable[Key]]]] = [
            (WORKFLOW_TEMPLATES, self.on_template, self.templates.snapshot_keys),
            (WORKFLOWS, self.on_workflow, self.workflows.snapshot_keys),
            (AGENTS, self.on_agent, self.agents.snapshot_keys),
            (WORKFLOW_SCHEDULES, self.on_schedule, self.schedules.snapshot_keys),
            (APPROVALS, self.on_approval, self.approvals.keys),
        ]
        return [
            Informer(self.kube, resource, namespace, deliver, known)
            for resource, deliver, known in kinds
            for namespace in namespaces
        ]

    async def sync(self, namespaces: list[str | None], retry_after: float = 2.0) -> None:
        """The informers' first listing, every kind in `namespaces` into the caches (the
        ledger adopts the tasks in flight on the way), then their watches, and only then
        the workers: no reconcile decides from half the picture (a restarted operator
        that reconciled one workflow before it had seen the others would give their busy
        agents a second task). An API server that does not answer is asked again until it
        does (listing twice is harmless: the handlers are level-based)."""
        started: list[tuple[Informer, str]] = []
        for informer in self.informers(namespaces):
            while True:
                try:
                    started.append((informer, await informer.list()))
                except KubeApiError as exc:
                    logger.warning(
                        "initial listing failed (%s); retrying in %.0fs", exc, retry_after
                    )
                    await asyncio.sleep(retry_after)
                else:
                    break
        for informer, version in started:
            self._tasks.append(asyncio.create_task(informer.run(version), name=repr(informer)))
        self.caches_synced()

    def caches_synced(self) -> None:
        """The initial listings of Workflows, Agents and templates are in the caches."""
        if self.synced.is_set():
            return
        self.synced.set()
        logger.info(
            "caches synced: %d workflows, %d agents, %d templates; %d tasks in flight",
            len(self.workflows),
            len(self.agents),
            len(self.templates),
            self.ledger.total_in_flight(),
        )

    # -- watch events -------------------------------------------------------------------

    def on_workflow(self, event_type: str | None, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.workflows.delete(obj)
            self.reachability.forget(key_of(obj))
        else:
            self.workflows.upsert(obj)
            if not self.synced.is_set():
                self._adopt(obj)
        self.workflow_queue.add(key_of(obj))
        self._wake_owning_schedule(obj)

    def _wake_owning_schedule(self, workflow: dict[str, Any]) -> None:
        """A run changed (started, finished, deleted): its schedule's active runs, history
        and Forbid decision may change with it."""
        meta = workflow.get("metadata") or {}
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == "WorkflowSchedule" and owner.get("controller"):
                self.schedule_queue.add((str(meta.get("namespace", "")), str(owner.get("name"))))

    def on_schedule(self, event_type: str | None, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self.schedules.delete(obj)
        else:
            self.schedules.upsert(obj)
        self.schedule_queue.add(key_of(obj))

    def on_approval(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """A decision arrived (or went): the Workflow it names decides again."""
        workflow = self.approvals.note(event_type, obj)
        if workflow is not None:
            self.workflow_queue.add(workflow)

    def _adopt(self, obj: dict[str, Any]) -> None:
        """Initial listing: take over the workflow's tasks in flight now, before any
        reconcile (its own first reconcile would be too late for the others': they would
        see its agents free)."""
        try:
            status = WorkflowStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            return  # its reconcile starts it afresh
        self.ledger.adopt(key_of(obj), status)

    def on_agent(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.agents.delete(obj)
            self.agent_index.drop(obj)
            self.missing_agents.clear(key)
        else:
            first_sight = self.agents.get(key) is None
            if not self.agents.upsert(obj):
                return
            self.agent_index.note(obj)
            self._track_agentkit_mark(key, obj, first_sight)
            holders = self.agent_index.holders(key[0], agent_id_of(obj))
            if len(holders) > 1:  # a duplicate: its keeper merges it (agent_reconciler.py)
                for name in holders:
                    self.agent_queue.add((key[0], name))
        # The heartbeat path: a report on this agent may finish a step. Wake its workflows
        # first, then whoever waits for an agent it could take.
        for workflow in self.ledger.workflows_on(key):
            self.workflow_queue.add(workflow)
        if event_type != "DELETED":
            self.agent_queue.add_after(key, AGENT_STATUS_DEBOUNCE_SECONDS)
            self.workflow_reconciler.wake_waiters(key[0], {key[1]})

    def _track_agentkit_mark(self, key: Key, obj: dict[str, Any], first_sight: bool) -> None:
        """Keep the NotRegisteredInAgentKit mark in step with the Agent: a newer spec (the
        agent registered again, or a user edited it) clears it; on first sight after a
        restart, the mark the previous operator wrote into `Ready` is taken back."""
        generation = obj.get("metadata", {}).get("generation")
        if self.missing_agents.clear_if_changed(key, generation):
            logger.info("agent %s/%s changed: no longer marked missing in AgentKit", *key)
            return
        if not first_sight or key in self.missing_agents:
            return
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "Ready"
                and cond.get("reason") == NOT_REGISTERED_REASON
                and cond.get("observedGeneration") == generation
            ):
                reason = str(cond.get("message") or "AgentKit did not know the agent")
                self.missing_agents.mark(key, reason, generation)

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
                phase = (body.get("status") or {}).get("phase")
                if ref.get("name") == name and phase in (None, WorkflowPhase.PENDING.value):
                    self.workflow_queue.add(key)


def _exit_on_lost_lease() -> None:
    """Another replica may hold the Lease from now on: stop at once, as controller-runtime
    does. Going on as a standby would mean trusting caches and a ledger built while this
    process thought it led; a restart comes back with fresh ones. Exit code 3 says why."""
    logging.shutdown()
    os._exit(3)
