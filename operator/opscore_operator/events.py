"""Kubernetes Events, posted in the background so they never slow a decision down.

Events are for humans (`kubectl describe`); facts the system relies on live in status.
The queue is bounded: under overload, events are dropped (and counted), never the work.

Normal Events (a run's outcome, an agent back online) draw on a budget, a token bucket
of `normal_per_second` with `normal_burst` at once: someone running workflows by hand
sees every one in `kubectl describe`, while a queue of thousands of quick runs does not
pay one API write per run for them (the one write per step that B1's target has no room
for). Over budget they are skipped and counted (`opscore_events_total{result=
"over_budget"}`); the run's status and its `Succeeded` condition say the same. Warnings
never wait for a budget: they are what a person must see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from opscore_kube import EVENTS, KubeApiError, KubeClient
from opscore_kube.ratelimit import TokenBucket

logger = logging.getLogger("opscore.events")

EVENTS_POSTED = Counter("opscore_events_total", "Kubernetes Events, by result.", ["result"])
COMPONENT = "opscore-operator"


@dataclass(frozen=True, slots=True)
class PendingEvent:
    involved: dict[str, Any]
    type: str
    reason: str
    message: str


class EventRecorder:
    def __init__(
        self,
        kube: KubeClient,
        *,
        capacity: int = 10_000,
        post_normal: bool = True,
        post_progress: bool = False,
        normal_per_second: float = 1.0,
        normal_burst: int = 10,
    ):
        self._kube = kube
        self._queue: asyncio.Queue[PendingEvent] = asyncio.Queue(maxsize=capacity)
        self._post_normal = post_normal
        self._post_progress = post_progress
        self._normal_budget = TokenBucket(rate=normal_per_second, burst=normal_burst)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="opscore-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def record(
        self,
        body: dict[str, Any],
        *,
        type: str,
        reason: str,
        message: str,
        progress: bool = False,
    ) -> None:
        """Queue an Event about `body`. `progress` Events (routine steps that status
        already records) are posted only when the recorder was built to post them."""
        if type == "Normal" and (not self._post_normal or (progress and not self._post_progress)):
            return
        if type == "Normal" and not self._normal_budget.try_acquire():
            EVENTS_POSTED.labels("over_budget").inc()
            return
        meta = body.get("metadata", {})
        involved = {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        try:
            self._queue.put_nowait(PendingEvent(involved, type, reason, message[:1024]))
        except asyncio.QueueFull:
            EVENTS_POSTED.labels("dropped").inc()

    async def flush(self) -> None:
        """Post what is queued now (at shutdown, after the workers stopped)."""
        while not self._queue.empty():
            await self._post_one(self._queue.get_nowait())

    async def _run(self) -> None:
        while True:
            await self._post_one(await self._queue.get())

    async def _post_one(self, event: PendingEvent) -> None:
        try:
            await self._post(event)
            EVENTS_POSTED.labels("posted").inc()
        except KubeApiError as exc:
            EVENTS_POSTED.labels("failed").inc()
            logger.debug("event not posted: %s", exc)

    async def _post(self, event: PendingEvent) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = event.involved["namespace"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{event.involved['name']}.", "namespace": namespace},
            "involvedObject": event.involved,
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
        }
        await self._kube.create(EVENTS, namespace, body)
