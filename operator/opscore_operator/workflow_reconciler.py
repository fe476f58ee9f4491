"""The workflow reconciler: read from the cache, decide with the engine, act, record.

Order of effects per pass, and why:
1. The ledger takes the decision's reservations synchronously (no other reconcile can
   give the same agent a second task in between).
2. The new status, naming each dispatch's task id, is written *before* the dispatch is
   sent: a crash in between leaves a known task id, never an unknown duplicate.
3. Dispatches go out concurrently in the background; a refusal from AgentKit comes back
   to the engine as a `failed_dispatches` entry on the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from opscore_kube import WORKFLOWS, Conflict, KubeClient, NotFound
from opscore_logic.base import parse_time
from opscore_logic.conditions import get_condition, set_condition
from opscore_logic.deferral import deferrable_first_write
from opscore_logic.engine import Decision, Dispatch, FailedDispatch, WorkflowRef, reconcile
from opscore_logic.reasons import WorkflowReason
from opscore_logic.templates import resolve
from opscore_logic.workflow_model import (
    WorkflowPhase,
    WorkflowSpec,
    WorkflowStatus,
    WorkflowTemplateSpec,
)
from opscore_operator.agent_reconciler import AGENT_STATUS_DEBOUNCE_SECONDS
from opscore_operator.agentkit import AgentKitClient, task_message
from opscore_operator.agentkit_marks import (
    AgentKitReachability,
    MissingInAgentKit,
    shows_agentkit_down,
)
from opscore_operator.agentpool import AgentPools
from opscore_operator.approval_book import ApprovalBook
from opscore_operator.candidates import agents_for_pass
from opscore_operator.events import EventRecorder
from opscore_operator.ledger import InFlight, Ledger
from opscore_operator.run_spans import RunSpans
from opscore_operator.status_patch import fenced_status_patch, holds_dispatches
from opscore_operator.step_defaults import with_default_timeout
from opscore_operator.store import Key, ObjectCache
from opscore_operator.usage_metrics import count_usage
from opscore_operator.waiting import WaitingRoom
from opscore_operator.wakeups import update_waiting, wake_waiters
from opscore_operator.workqueue import WorkQueue

logger = logging.getLogger("opscore.workflows")


RECONCILES = Counter(
    "opscore_workflow_reconciles_total",
    "Workflow reconcile passes, by result (error: retried with backoff).",
    ["result"],
)
for _result in ("ok", "error"):
    RECONCILES.labels(_result)  # exported at 0 from the start, so alerts see the series
RECONCILE_SECONDS = Histogram(
    "opscore_workflow_reconcile_seconds",
    "Duration of one workflow reconcile pass (excluding background dispatches).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
STEP_ADVANCE_SECONDS = Histogram(
    "opscore_step_advance_seconds",
    "From the sidecar receiving the report that finished a step (its receivedAt) to the "
    "operator sending the dispatch that pass made ready (a next step queued for a busy "
    "agent is not counted).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class WorkflowReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        agentkit: AgentKitClient,
        workflows: ObjectCache,
        agents: ObjectCache,
        templates: ObjectCache,
        ledger: Ledger,
        waiting: WaitingRoom,
        missing_agents: MissingInAgentKit,
        queue: WorkQueue[Key],
        agent_queue: WorkQueue[Key],
        recorder: EventRecorder,
        reachability: AgentKitReachability | None = None,
        pools: AgentPools | None = None,
        may_act: Callable[[], bool] = lambda: True,
        default_step_timeout_seconds: int = 0,
        approvals: ApprovalBook | None = None,
        spans: RunSpans | None = None,
    ) -> None:
        self.kube = kube
        self.approvals = approvals if approvals is not None else ApprovalBook()
        # False once another replica may hold the Lease (leadership.py): no pass starts
        # and no dispatch leaves after that, even before the process has noticed.
        self.may_act = may_act
        self.agentkit = agentkit
        self.workflows = workflows
        self.agents = agents
        self.templates = templates
        self.ledger = ledger
        self.waiting = waiting
        self.missing_agents = missing_agents
        self.queue = queue
        self.agent_queue = agent_queue
        self.recorder = recorder
        self.reachability = reachability or AgentKitReachability()
        self.default_step_timeout_seconds = default_step_timeout_seconds
        self.pools = pools or AgentPools(agents=agents, ledger=ledger, missing=missing_agents)
        self.failed_dispatches: dict[str, FailedDispatch] = {}
        # Traces (run_spans.py): does nothing unless an OTLP endpoint is configured.
        self.spans = spans or RunSpans(None)
        self._background: set[asyncio.Task[None]] = set()

    async def worker(self) -> None:
        """Process keys forever; a failing pass is retried with backoff, never fatal."""
        failures: dict[Key, int] = {}
        while True:
            key = await self.queue.get()
            started = time.perf_counter()
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                count = failures.get(key, 0) + 1
                failures[key] = count
                delay = min(30.0, 0.1 * 2**count)
                RECONCILES.labels("error").inc()
                logger.warning(
                    "reconcile of %s/%s failed (%s); retrying in %.1fs",
                    *key,
                    exc,
                    delay,
                    exc_info=not isinstance(exc, OSError),
                    extra={"namespace": key[0], "workflow": key[1]},
                )
                self.queue.add_after(key, delay)
            else:
                failures.pop(key, None)
                RECONCILES.labels("ok").inc()
            finally:
                RECONCILE_SECONDS.observe(time.perf_counter() - started)
                self.queue.done(key)

    async def reconcile(self, key: Key) -> None:
        if not self.may_act():
            return  # a standby again: the process is on its way out (runtime.py)
        body = self.workflows.get(key)
        if body is None:
            self._forget(key)
            return
        meta = body["metadata"]
        ref = WorkflowRef(
            namespace=key[0],
            name=key[1],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 1),
            created=parse_time(meta.get("creationTimestamp")) or datetime.now(UTC),
        )
        raw_status: dict[str, Any] = dict(body.get("status") or {})
        try:
            status = WorkflowStatus.model_validate(_written(raw_status))
        except ValidationError:
            logger.warning("status of %s/%s unreadable; starting it afresh", *key)
            status = WorkflowStatus()
        self.ledger.adopt(key, status)

        now = datetime.now(UTC)
        spec_error: str | None = None
        try:
            spec = WorkflowSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            spec, spec_error = WorkflowSpec(), _validation_message(exc)
        template = self._template(key[0], spec)
        if (
            spec.template_ref is not None
            and template is None
            and status.phase in (None, WorkflowPhase.PENDING)
            and not spec.cancel
            and spec_error is None
        ):
            await self._await_template(
                key, body, raw_status, status, ref, spec.template_ref.name, now
            )
            return
        resolved = resolve(spec, template)
        steps = with_default_timeout(resolved.steps, self.default_step_timeout_seconds)
        rank = (-spec.priority, ref.created or now, key)
        pool = self.pools.namespace(key[0], now)
        views = agents_for_pass(
            pool,
            steps,
            {entry.agent for entry in status.steps if entry.agent},
            self.waiting.ahead_of(rank, key[0]),
        )
        decision = reconcile(
            ref=ref,
            spec=spec,
            status=status,
            steps=steps,
            agents=views,
            now=now,
            inputs=resolved.inputs,
            resolve_error=spec_error or resolved.error,
            failed_dispatches=self.failed_dispatches,
            count_fitting=pool.count_fitting,
            default_budget=template.budget if template is not None else None,
            approvals=self.approvals.for_workflow(key, ref.uid),
        )
        if deferrable_first_write(
            old=status, decision=decision, spec=spec, steps=steps, serves=pool.serves
        ) and not self.reachability.trouble(key):
            # Queued behind busy agents: `phase: Pending` (the CRD default) says it all.
            self._update_waiting(key, spec, ref, steps, decision)
            if decision.requeue_after is not None:
                self.queue.add_after(key, decision.requeue_after + 0.01)
            return
        self._apply_to_ledger(key, decision, now)
        # The waiting room learns this pass's outcome before the write's await: a run that
        # just took its agents must not hold a place other passes give way to (they would
        # leave those agents idle) or absorb the wake-ups of agents freed meanwhile. A write
        # that fails queues the pass again, and that pass puts the run back.
        self._update_waiting(key, spec, ref, steps, decision)
        recovered = self.reachability.set_condition(key, decision.status, now, ref.generation)
        new_status = decision.status.wire()
        if new_status != raw_status:
            updated = await self._patch_status(
                key, body, raw_status, new_status, reserved_by=decision
            )
            if updated is None:
                return
            body = updated
        if recovered:
            self.reachability.written(key)
        self.spans.pass_ended(ref=ref, before=status, decision=decision, now=now, agents=views)
        count_usage(key[0], decision, self.ledger)
        self._log_releases(key, decision)
        advanced_from = _advanced_from(decision)
        for dispatch in decision.dispatches:
            self._spawn(self._dispatch(key, ref, dispatch, advanced_from))
        self._record(body, decision)
        if decision.requeue_after is not None:
            self.queue.add_after(key, decision.requeue_after + 0.01)
        if decision.delete:
            await self._delete(key)

    # -- pieces -------------------------------------------------------------------------

    async def _await_template(
        self,
        key: Key,
        body: dict[str, Any],
        raw_status: dict[str, Any],
        status: WorkflowStatus,
        ref: WorkflowRef,
        template: str,
        now: datetime,
    ) -> None:
        """A run that has not started waits for its missing WorkflowTemplate, as a Pod
        waits for its ConfigMap: `kubectl apply -f dir/` may create the Workflow first.
        `Runtime.on_template` wakes it when the template appears. (A template deleted
        mid-run fails the run: the engine decides that.)"""
        message = f"waiting for WorkflowTemplate {template!r} (not found in {key[0]})"
        before = get_condition(status.conditions, "Succeeded")
        status.phase = WorkflowPhase.PENDING
        status.message = message
        status.observed_generation = ref.generation
        status.conditions = set_condition(
            status.conditions,
            type="Succeeded",
            status="Unknown",
            reason=WorkflowReason.TEMPLATE_NOT_FOUND,
            message=message,
            now=now,
            generation=ref.generation,
        )
        new_status = status.wire()
        if new_status == raw_status:
            return
        updated = await self._patch_status(key, body, raw_status, new_status)
        if updated is None:
            return
        if before is None or before.reason != WorkflowReason.TEMPLATE_NOT_FOUND:
            self.recorder.record(
                updated, type="Warning", reason=WorkflowReason.TEMPLATE_NOT_FOUND, message=message
            )
        logger.info("workflow %s/%s waits for WorkflowTemplate %r", *key, template)

    def _template(self, namespace: str, spec: WorkflowSpec) -> WorkflowTemplateSpec | None:
        if spec.template_ref is None:
            return None
        body = self.templates.get((namespace, spec.template_ref.name))
        if body is None:
            return None
        try:
            return WorkflowTemplateSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return None

    def _apply_to_ledger(self, key: Key, decision: Decision, now: datetime) -> None:
        touched: set[Key] = set()
        for release in decision.releases:
            agent = (key[0], release.agent)
            self.ledger.release(agent, release.task_id, release.result)
            self.failed_dispatches.pop(release.task_id, None)
            touched.add(agent)
        for dispatch in decision.dispatches:
            agent = (key[0], dispatch.agent)
            self.ledger.reserve(agent, InFlight(key, dispatch.step, dispatch.task_id, now))
            touched.add(agent)
        for agent in touched:
            self.agent_queue.add_after(agent, AGENT_STATUS_DEBOUNCE_SECONDS)
        if decision.releases:
            self.wake_waiters(key[0], {r.agent for r in decision.releases})

    async def _patch_status(
        self,
        key: Key,
        body: dict[str, Any],
        raw_status: dict[str, Any],
        new_status: dict[str, Any],
        *,
        reserved_by: Decision | None = None,
    ) -> dict[str, Any] | None:
        """Write the status (a merge patch from `raw_status` to `new_status`, fenced by the
        version `body` is: see `fenced_status_patch`) and cache the answer, so the next pass
        starts from it. Returns the updated Workflow, or None when nothing was written:
        gone (404: it leaves the cache and the ledger) or changed since (409: the API
        server's copy is read and the pass queued again); the caller stops either way.

        The ledger slots `reserved_by`'s dispatches took are given back when the write
        fails (they belong to a status that was never stored); errors other than 404 and
        409 propagate, and the queue retries the pass. But a write that timed out or lost
        its connection may have taken effect: then the stored status names those task ids
        on those agents, and forgetting them would give the agents to other steps while
        the stored status says they run this one (a reference agent's next report would
        then read as this step's outcome). So such a failure (and a 409, which is what the
        client's own retry of a write that took effect meets) is checked against the API
        server's copy first: when it holds this write's dispatches exactly, the write
        took effect and the pass goes on as if it had been answered."""
        try:
            updated = await self.kube.patch(
                WORKFLOWS,
                key[0],
                key[1],
                fenced_status_patch(body, raw_status, new_status),
                status=True,
            )
        except NotFound:
            if reserved_by is not None:
                self._undo_dispatches(key, reserved_by)
            self.workflows.delete(body)
            self._forget(key)
            return None
        except Conflict:
            # Our write lost against a newer version (a user's edit, another replica's
            # write): decide again from the API server's copy, never write or send what
            # was decided from the old one. Or it is what a write that took effect meets
            # when its answer was lost and the client sent it again.
            current = await self._get(key)
            if current is not None and holds_dispatches(current, new_status, reserved_by):
                return self._took_effect(key, current, "a 409 on a retried write")
            if reserved_by is not None:
                self._undo_dispatches(key, reserved_by)
            if current is None:
                self.workflows.delete(body)
                self._forget(key)
            else:
                self.workflows.upsert(current)
                self.queue.add(key)
            return None
        except Exception as exc:
            current = await self._get(key, quiet=True) if reserved_by is not None else None
            if current is not None and holds_dispatches(current, new_status, reserved_by):
                return self._took_effect(key, current, type(exc).__name__)
            if reserved_by is not None:
                self._undo_dispatches(key, reserved_by)
            raise
        except BaseException:  # cancelled: no time to look
            if reserved_by is not None:
                self._undo_dispatches(key, reserved_by)
            raise
        self.workflows.upsert(updated)
        return updated

    async def _get(self, key: Key, *, quiet: bool = False) -> dict[str, Any] | None:
        """The API server's copy, None when it is gone (or, `quiet`, cannot be read)."""
        try:
            return await self.kube.get(WORKFLOWS, key[0], key[1])
        except NotFound:
            return None
        except Exception:
            if quiet:
                return None
            raise

    def _took_effect(self, key: Key, current: dict[str, Any], how: str) -> dict[str, Any]:
        logger.warning("status write of %s/%s took effect despite %s: going on", *key, how)
        self.workflows.upsert(current)
        return current

    def _undo_dispatches(self, key: Key, decision: Decision) -> None:
        for dispatch in decision.dispatches:
            self.ledger.release((key[0], dispatch.agent), dispatch.task_id, "abandoned")

    def _log_releases(self, key: Key, decision: Decision) -> None:
        """One line per task that ended (succeeded, failed, abandoned), with its ids."""
        for release in decision.releases:
            logger.info(
                "task %s on agent %s: %s",
                release.task_id,
                release.agent,
                release.result,
                extra={
                    "namespace": key[0],
                    "workflow": key[1],
                    "step": release.step,
                    "agent": release.agent,
                    "task_id": release.task_id,
                    "result": release.result,
                },
            )

    async def _dispatch(
        self,
        key: Key,
        ref: WorkflowRef,
        dispatch: Dispatch,
        advanced_from: datetime | None = None,
    ) -> None:
        ids = {
            "namespace": key[0],
            "workflow": key[1],
            "step": dispatch.step,
            "agent": dispatch.agent,
            "agent_id": dispatch.agent_id,
            "task_id": dispatch.task_id,
            "attempt": dispatch.attempt,
        }
        if advanced_from is not None:
            waited = (datetime.now(UTC) - advanced_from).total_seconds()
            STEP_ADVANCE_SECONDS.observe(max(0.0, waited))  # two clocks: never negative
        if not self.may_act():
            # Recorded but never sent: the next leader finds the step Running with this
            # task id, as after a crash between the write and the POST.
            logger.warning("not sending task %s: no longer the leader", dispatch.task_id, extra=ids)
            return
        logger.info("dispatching task %s to agent %s", dispatch.task_id, dispatch.agent, extra=ids)
        traceparent = self.spans.traceparent(ref, dispatch)
        with self.spans.dispatching(ref, dispatch, server=self.agentkit.server) as span:
            message = task_message(dispatch, ref, traceparent=traceparent)
            result = await self.agentkit.run(dispatch.agent_id, message)
            span.record(result)
        if result.ok:
            if self.reachability.succeeded(key, shown_down=self._shows_agentkit_down(key)):
                self.queue.add(key)  # write AgentKitReachable=True
            return
        agent = (key[0], dispatch.agent)
        if result.outcome == "not_found":
            body = self.agents.get(agent) or {}
            self.missing_agents.mark(
                agent,
                f"AgentKit does not know agent id {dispatch.agent_id!r} (it forgets agents "
                "when it restarts); waiting for the agent to register again",
                body.get("metadata", {}).get("generation"),
            )
        elif result.outcome == "unreachable":
            self.reachability.failed(key, result.reason or "Unreachable", result.detail)
        else:
            # AgentKit answered (a 4xx about the request): it is reachable.
            self.reachability.succeeded(key, shown_down=self._shows_agentkit_down(key))
        self.failed_dispatches[dispatch.task_id] = FailedDispatch(
            result.detail or result.outcome, maybe_delivered=result.maybe_delivered
        )
        logger.warning(
            "dispatch of %s to %s failed (%s): %s",
            dispatch.task_id,
            agent[1],
            "AgentKit may have taken it: it is sent again under the same task id"
            if result.maybe_delivered
            else "it is sent again as a new attempt",
            result.detail or result.outcome,
            extra={**ids, "result": result.outcome, "maybe_delivered": result.maybe_delivered},
        )
        self.agent_queue.add(agent)
        self.queue.add(key)

    def _shows_agentkit_down(self, key: Key) -> bool:
        return shows_agentkit_down(self.workflows.get(key) or {})

    def _record(self, body: dict[str, Any], decision: Decision) -> None:
        for event in decision.events:
            self.recorder.record(
                body,
                type=event.type,
                reason=event.reason,
                message=event.message,
                progress=event.progress,
            )

    def _update_waiting(
        self,
        key: Key,
        spec: WorkflowSpec,
        ref: WorkflowRef,
        steps: list[Any] | None,
        decision: Decision,
    ) -> None:
        update_waiting(self.waiting, key, spec=spec, ref=ref, steps=steps, decision=decision)

    def wake_waiters(self, namespace: str, agents: set[str] | None = None) -> None:
        """See `wakeups.wake_waiters`: for each free slot, the first waiting run that fits."""
        wake_waiters(self.waiting, self.pools, self.queue, namespace, agents)

    def _forget(self, key: Key) -> None:
        self.waiting.remove(key)
        for agent in self.ledger.forget_workflow(key):
            self.agent_queue.add(agent)
        self.wake_waiters(key[0])

    async def _delete(self, key: Key) -> None:
        with contextlib.suppress(NotFound):
            await self.kube.delete(WORKFLOWS, key[0], key[1])
        logger.info("deleted finished workflow %s/%s (ttlSecondsAfterFinished)", *key)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for in-flight dispatches (used on shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _written(raw_status: dict[str, Any]) -> dict[str, Any]:
    """The status as the operator wrote it: a lone `phase: Pending` is the CRD's default
    for a status never written, not a run the engine has seen."""
    return {} if raw_status == {"phase": WorkflowPhase.PENDING.value} else raw_status


def _advanced_from(decision: Decision) -> datetime | None:
    """When the newest report that finished a step in this pass was received: the start
    of the step advance that this pass's dispatches end (None if no step succeeded)."""
    moments = [
        release.reported_at
        for release in decision.releases
        if release.result == "succeeded" and release.reported_at is not None
    ]
    return max(moments, default=None)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"spec.{where}: {error['msg']}")
    return "; ".join(parts)
