"""Leader election on a real API server: one leader among candidates, a release hands over
at the standby's next try, a leader that stops renewing is replaced only once its lease
ran out, and a leader cut off from the API server stops acting before that.

Durations are shortened (lease 3 s, renew deadline 2 s, retry 0.25 s) so the rules show
in seconds; the defaults are client-go's 15/10/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from opscore_kube import LEASES, KubeClient, load_connection
from opscore_operator.leadership import ElectionConfig, LeaderElector

LEASE = 3.0
RENEW = 2.0
RETRY = 0.25


@pytest.fixture
async def kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    async with KubeClient.from_kubeconfig(str(kubeconfig), timeout=2.0, max_retries=0) as client:
        yield client


class Candidate:
    """One elector with its run task; `lost` counts how often it gave up leading."""

    def __init__(self, kube: KubeClient, namespace: str, identity: str) -> None:
        self.lost = 0
        config = ElectionConfig(
            namespace=namespace,
            identity=identity,
            lease_duration=LEASE,
            renew_deadline=RENEW,
            retry_period=RETRY,
        )
        self.elector = LeaderElector(kube=kube, config=config, on_lost=self._lost)
        self.task = asyncio.create_task(self.elector.run())

    def _lost(self) -> None:
        self.lost += 1

    async def crash(self) -> None:
        """Stop without releasing, as a SIGKILL would."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def until(condition: Callable[[], bool], *, within: float, what: str) -> float:
    """Seconds until `condition` held; fails after `within`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def holder(kube: KubeClient, namespace: str) -> str:
    lease = await kube.get(LEASES, namespace, "opscore-operator")
    return str(lease["spec"].get("holderIdentity") or "")


async def test_exactly_one_of_three_candidates_leads(kube: KubeClient, namespace: str) -> None:
    candidates = [Candidate(kube, namespace, f"replica-{i}") for i in range(3)]
    try:
        await until(
            lambda: any(c.elector.may_act() for c in candidates), within=10, what="a leader"
        )
        await asyncio.sleep(LEASE + 1)  # the standbys keep trying for more than a lease
        leaders = [c for c in candidates if c.elector.leading.is_set()]
        assert len(leaders) == 1
        assert await holder(kube, namespace) == leaders[0].elector.identity
    finally:
        for c in candidates:
            await c.crash()


async def test_released_lease_is_taken_at_the_standbys_next_try(
    kube: KubeClient, namespace: str
) -> None:
    first = Candidate(kube, namespace, "first")
    await until(first.elector.may_act, within=10, what="the first leader")
    second = Candidate(kube, namespace, "second")
    try:
        await asyncio.sleep(RETRY * 4)
        assert not second.elector.leading.is_set()
        await first.elector.release()
        await first.crash()
        took = await until(second.elector.may_act, within=LEASE, what="the handover")
        assert took < RETRY * 4 + 1.0  # a retry period or so, not a lease duration
        lease = await kube.get(LEASES, namespace, "opscore-operator")
        assert lease["spec"]["holderIdentity"] == "second"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        await second.crash()


async def test_a_crashed_leader_is_replaced_only_after_its_lease_ran_out(
    kube: KubeClient, namespace: str
) -> None:
    first = Candidate(kube, namespace, "first")
    await until(first.elector.may_act, within=10, what="the first leader")
    second = Candidate(kube, namespace, "second")
    try:
        await asyncio.sleep(RETRY * 2)  # the standby has seen the lease being renewed
        await first.crash()
        crashed = time.monotonic()
        await until(second.elector.may_act, within=LEASE * 3, what="the takeover")
        waited = time.monotonic() - crashed
        assert LEASE - RETRY * 2 <= waited <= LEASE + 2 * RETRY + 1.0
        assert await holder(kube, namespace) == "second"
    finally:
        await second.crash()


class PausableProxy:
    """A TCP relay in front of the API server whose traffic can be frozen, as by a
    network partition: connections stay open, nothing gets through."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("https://").rsplit(":", 1)
        self._upstream = (host, int(port))
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"https://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.flowing.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()


async def test_a_leader_cut_off_from_the_api_server_stops_acting_before_its_lease_ends(
    namespace: str, kubeconfig: Path
) -> None:
    connection = load_connection(str(kubeconfig))
    proxy = PausableProxy(connection.server)
    connection.server = await proxy.start()
    async with KubeClient(connection, timeout=30.0, max_retries=0) as kube:
        leader = Candidate(kube, namespace, "leader")
        try:
            await until(leader.elector.may_act, within=10, what="the leader")
            proxy.flowing.clear()  # the partition: renewals hang, none fails fast
            cut = time.monotonic()
            await until(lambda: not leader.elector.may_act(), within=LEASE * 2, what="it to stop")
            assert time.monotonic() - cut < LEASE  # before anyone else could take over
            await until(lambda: leader.lost == 1, within=RENEW + 1, what="on_lost")
        finally:
            await leader.crash()
            await proxy.stop()


async def test_a_paused_leader_may_not_act_when_it_wakes_before_its_elector_runs(
    kube: KubeClient, namespace: str
) -> None:
    leader = Candidate(kube, namespace, "leader")
    try:
        await until(leader.elector.may_act, within=10, what="the leader")
        # The fault itself, not a wait: the whole event loop frozen past the renew
        # deadline, as SIGSTOP freezes a process. On waking, the first thing that asks
        # (a dispatch about to go out) must hear "no", before the elector had a turn.
        time.sleep(RENEW + 0.1)  # noqa: ASYNC251 (blocking the loop is the point)
        assert leader.elector.leading.is_set()  # the elector has not noticed yet
        assert not leader.elector.may_act()
    finally:
        await leader.crash()
