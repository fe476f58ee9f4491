"""Leader election on a `coordination.k8s.io/v1` Lease, so that two operator replicas can
run and only one of them acts.

The algorithm is client-go's (`tools/leaderelection`), written for asyncio:

- A candidate reads the Lease. It may take it when nobody holds it, or when the record it
  sees has not changed for `leaseDurationSeconds` *by its own monotonic clock* (never by
  the timestamps in the record: the replicas' wall clocks need not agree).
- Every write is conditional on the Lease's `resourceVersion`, so of two candidates that
  try at once exactly one wins; the other sees a 409 and stays a follower.
- The leader renews every `retry_period`. It counts itself the leader only while its last
  successful renewal was *sent* less than `renew_deadline` ago (10 s against the lease's
  15 s), so a leader that cannot renew, or was paused, stops acting before any other
  replica can take the Lease. Losing the Lease ends the process (as controller-runtime
  does): a restart comes back as a standby with fresh caches instead of a leader whose
  picture of the world went stale while it was not looking.
- On shutdown the leader gives the Lease up (empty holder, 1 s duration), so a rolling
  update hands over in about a second instead of a lease duration.

Why not the `kubernetes` package's `leaderelection`: it runs in threads with blocking
calls and `time.sleep`, keeps no monotonic deadline the dispatch path could check, and
has no release on shutdown. This module is those same rules on the operator's own async
client (rate limit, retries, metrics) and event loop.

The Lease alone does not make two leaders impossible (a paused leader wakes up still
believing). What makes a second dispatch impossible is the fenced write in the workflow
reconciler: a dispatch is recorded only by a status write conditional on the version it
was decided from. `may_act` is the cheap check in front of it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from opscore_kube import LEASES, Conflict, KubeApiError, KubeClient, NotFound

logger = logging.getLogger("opscore.leadership")

IS_LEADER = Gauge(
    "opscore_operator_leader",
    "1 while this replica holds the operator's Lease and acts, 0 while it stands by.",
)
TRANSITIONS = Counter(
    "opscore_operator_leader_transitions_total",
    "Times this replica became the leader (taking the Lease over, or creating it).",
)


@dataclass(frozen=True, slots=True)
class ElectionConfig:
    """Where the Lease lives, who this replica is, and the three durations (client-go's
    defaults: 15 s lease, 10 s renew deadline, 2 s retry)."""

    namespace: str
    lease_name: str = "opscore-operator"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs retry period < renew deadline < lease duration, got "
                f"{self.retry_period} < {self.renew_deadline} < {self.lease_duration}"
            )


def default_identity() -> str:
    """`hostname_uuid`, as client-go's callers use: unique even for two processes on one
    host (the test bed runs both replicas on one machine)."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _micro_time(moment: datetime) -> str:
    """A `MicroTime` as the API server writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Takes and keeps the Lease; `leading` is set while this replica may act."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        config: ElectionConfig,
        on_lost: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.config = config
        self.identity = config.identity or default_identity()
        self.leading = asyncio.Event()
        self._on_lost = on_lost
        self._clock = clock
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_sent_at: float | None = None
        self._resource_version: str | None = None
        self._expires_at = 0.0  # when the held lease runs out by our clock
        IS_LEADER.set(0)

    def may_act(self) -> bool:
        """True only while the last successful renewal was sent within the renew deadline:
        checked right before anything that must happen at most once (a dispatch)."""
        sent = self._renewed_sent_at
        return (
            self.leading.is_set()
            and sent is not None
            and self._clock() - sent < self.config.renew_deadline
        )

    async def run(self) -> None:
        """Stand by until the Lease is ours, then keep it; return only when it is lost
        (after `on_lost` was called) or when cancelled."""
        while True:
            if await self._try_acquire_or_renew():
                break
            # Try again after a retry period, or right when the holder's lease runs out
            # by our clock if that is sooner: a dead leader is replaced a lease duration
            # after its last renewal, not up to a retry period later.
            until_expiry = self._expires_at - self._clock() + 0.05
            await asyncio.sleep(max(0.05, min(self.config.retry_period, until_expiry)))
        self.leading.set()
        IS_LEADER.set(1)
        logger.info("leading: Lease %s/%s is ours", self.config.namespace, self.config.lease_name)
        while True:
            await asyncio.sleep(self.config.retry_period)
            if not await self._renew_within_deadline():
                break
        self.leading.clear()
        IS_LEADER.set(0)
        logger.error(
            "lost the Lease %s/%s (no renewal within %.0fs): stopping",
            self.config.namespace,
            self.config.lease_name,
            self.config.renew_deadline,
        )
        self._on_lost()

    async def release(self) -> None:
        """Give the Lease up (shutdown): empty holder and a 1 s duration, so the standby
        takes over at its next try instead of after a whole lease duration. Conditional
        on the version we last wrote: a Lease someone else took is left alone."""
        if not self.leading.is_set() or self._resource_version is None:
            return
        self.leading.clear()
        IS_LEADER.set(0)
        now = datetime.now(UTC)
        patch = {
            "metadata": {"resourceVersion": self._resource_version},
            "spec": {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": _micro_time(now),
            },
        }
        try:
            async with asyncio.timeout(self.config.retry_period):
                await self.kube.patch(LEASES, self.config.namespace, self.config.lease_name, patch)
        except (KubeApiError, TimeoutError) as exc:
            logger.warning("could not release the Lease (%s); it expires by itself", exc)
        else:
            logger.info("released the Lease %s/%s", self.config.namespace, self.config.lease_name)

    async def _renew_within_deadline(self) -> bool:
        deadline = self._clock() + self.config.renew_deadline
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    if await self._try_acquire_or_renew():
                        return True
            except TimeoutError:
                return False
            await asyncio.sleep(min(self.config.retry_period, max(0.0, deadline - self._clock())))

    async def _try_acquire_or_renew(self) -> bool:
        """One round of client-go's `tryAcquireOrRenew`; every failure is 'not now'."""
        sent_at = self._clock()
        now = datetime.now(UTC)
        cfg = self.config
        try:
            lease = await self.kube.get(LEASES, cfg.namespace, cfg.lease_name)
        except NotFound:
            return await self._create(sent_at, now)
        except KubeApiError as exc:
            logger.warning("reading the Lease failed: %s", exc)
            return False
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        record = (holder, spec.get("renewTime"), duration, spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        self._expires_at = self._observed_at + duration
        if holder and holder != self.identity and self._expires_at > self._clock():
            return False  # held, and not expired by our clock
        transitions = int(spec.get("leaseTransitions") or 0)
        mine = holder == self.identity
        patch = {
            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(cfg.lease_duration),
                "acquireTime": spec.get("acquireTime") if mine else _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions if mine else transitions + 1,
            },
        }
        try:
            updated = await self.kube.patch(LEASES, cfg.namespace, cfg.lease_name, patch)
        except Conflict:
            return False  # someone else wrote first: they win this round
        except KubeApiError as exc:
            logger.warning("writing the Lease failed: %s", exc)
            return False
        if not mine:
            TRANSITIONS.inc()
            logger.info("took the Lease over from %r", holder or "nobody")
        self._written(updated, sent_at)
        return True

    async def _create(self, sent_at: float, now: datetime) -> bool:
        cfg = self.config
        body = {
            "apiVersion": LEASES.api_version,
            "kind": "Lease",
            "metadata": {"name": cfg.lease_name, "namespace": cfg.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(cfg.lease_duration),
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": 0,
            },
        }
        try:
            created = await self.kube.create(LEASES, cfg.namespace, body)
        except KubeApiError as exc:  # 409: another replica created it first
            logger.info("creating the Lease failed (%s); trying again", exc)
            return False
        TRANSITIONS.inc()
        self._written(created, sent_at)
        return True

    def _written(self, lease: dict[str, Any], sent_at: float) -> None:
        spec = lease.get("spec") or {}
        self._resource_version = str(lease["metadata"]["resourceVersion"])
        self._observed = (
            str(spec.get("holderIdentity") or ""),
            spec.get("renewTime"),
            float(spec.get("leaseDurationSeconds") or self.config.lease_duration),
            spec.get("leaseTransitions"),
        )
        self._observed_at = self._clock()
        self._renewed_sent_at = sent_at
