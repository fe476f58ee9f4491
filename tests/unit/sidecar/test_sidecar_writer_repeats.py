"""Heartbeats that repeat the stored state (they only refresh liveness) wait longer for
company than heartbeats that change it; anything else still ends every wait at once."""

from __future__ import annotations

import asyncio

import pytest
from sidecar_fakes import AGENT_ID, NAMESPACE, FakeKube, agent_report, declared_agent

from opscore_sidecar.agent_directory import AgentDirectory
from opscore_sidecar.reports import REPEAT_JITTER, ReportWriter, repeat_phase

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def writer_for(kube: FakeKube, *, linger: float, repeat_linger: float) -> ReportWriter:
    return ReportWriter(
        kube, AgentDirectory(kube, NAMESPACE), linger=linger, repeat_linger=repeat_linger
    )


async def test_repeated_heartbeats_share_one_write_with_the_next_idle(kube: FakeKube) -> None:
    writer = writer_for(kube, linger=0.01, repeat_linger=30.0)
    await writer.submit(AGENT_ID, agent_report("active", 0))
    await writer.aclose()  # the first heartbeat changes the state: written after 10 ms
    before = kube.count("patch_status")
    for second in (1, 2, 3):
        assert await writer.submit(AGENT_ID, agent_report("active", second)) is True
    assert kube.count("patch_status") == before  # acknowledged, still waiting for company
    assert await writer.submit(AGENT_ID, agent_report("idle", 4)) is True  # durable on return
    assert kube.count("patch_status") - before == 1
    # All three heartbeats went into that write; the first one gave way to them (the log
    # of a one-task agent keeps 4: report_limit).
    stored = [(r["state"], r["timestamp"][17:19]) for r in kube.reports(AGENT_ID)]
    assert stored == [("active", "01"), ("active", "02"), ("active", "03"), ("idle", "04")]


async def test_a_heartbeat_that_changes_the_state_waits_only_the_short_linger(
    kube: FakeKube,
) -> None:
    writer = writer_for(kube, linger=0.01, repeat_linger=30.0)
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.submit(AGENT_ID, agent_report("active", 1))
    await writer.aclose()
    assert loop.time() - started < 5.0
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["idle", "active"]


async def test_a_state_change_cuts_short_the_wait_of_a_repeat_before_it(
    kube: FakeKube,
) -> None:
    writer = writer_for(kube, linger=0.01, repeat_linger=30.0)
    await writer.submit(AGENT_ID, agent_report("active", 0))
    await writer.aclose()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.submit(AGENT_ID, agent_report("active", 1))  # a repeat: may wait 30 s
    await writer.submit(AGENT_ID, agent_report("initializing", 2))  # a change: 10 ms
    await writer.aclose()
    assert loop.time() - started < 5.0
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["active", "active", "initializing"]


async def test_a_lone_repeat_is_written_after_the_repeat_linger(kube: FakeKube) -> None:
    writer = writer_for(kube, linger=0.01, repeat_linger=0.2)
    await writer.submit(AGENT_ID, agent_report("active", 0))
    await writer.aclose()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.submit(AGENT_ID, agent_report("active", 1))
    await writer.aclose()
    # Its own share of the jitter off (see the next test), never more than the linger.
    own = 0.2 * (1 - REPEAT_JITTER * repeat_phase(AGENT_ID))
    assert own - 0.02 <= loop.time() - started < 0.2 + 0.1
    assert len(kube.reports(AGENT_ID)) == 2


def agent_with_phase(low: float, high: float) -> str:
    """The first agent id `agent-N` whose repeat phase lies in [low, high)."""
    return next(f"agent-{n}" for n in range(10_000) if low <= repeat_phase(f"agent-{n}") < high)


async def test_agents_refresh_liveness_at_their_own_pace_not_in_one_burst(
    kube: FakeKube,
) -> None:
    """Two agents whose repeats were queued together are written apart: each waits the
    linger less its own share of REPEAT_JITTER (fixed by its id), between half the linger
    and all of it."""
    waited: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    for agent in (agent_with_phase(0.0, 0.1), agent_with_phase(0.9, 1.0)):
        writer = writer_for(kube, linger=0.01, repeat_linger=0.4)
        await writer.submit(agent, agent_report("active", 0))
        await writer.aclose()
        started = loop.time()
        await writer.submit(agent, agent_report("active", 1))  # a repeat
        await writer.aclose()
        waited[agent] = loop.time() - started
    slow, fast = waited.values()
    assert 0.4 * (1 - REPEAT_JITTER * 0.1) - 0.02 <= slow < 0.5
    assert 0.4 * (1 - REPEAT_JITTER) - 0.02 <= fast < 0.4 * (1 - REPEAT_JITTER * 0.9) + 0.05
    assert slow - fast > 0.1


def test_repeat_phases_spread_evenly_over_agent_ids() -> None:
    phases = [repeat_phase(f"agent-{n}") for n in range(2_000)]
    assert all(0.0 <= phase < 1.0 for phase in phases)
    deciles = [sum(1 for p in phases if k / 10 <= p < (k + 1) / 10) for k in range(10)]
    assert min(deciles) > 150  # 200 each if perfectly even
    assert repeat_phase("agent-7") == repeat_phase("agent-7")  # the same in every replica


async def test_linger_zero_turns_the_repeat_linger_off(kube: FakeKube) -> None:
    writer = writer_for(kube, linger=0.0, repeat_linger=30.0)
    await writer.submit(AGENT_ID, agent_report("active", 0))
    await writer.submit(AGENT_ID, agent_report("active", 1))  # answered once durable
    assert len(kube.reports(AGENT_ID)) == 2


async def test_a_repeat_waits_no_more_than_a_tenth_of_the_heartbeat_timeout(
    kube: FakeKube,
) -> None:
    """A 2 s heartbeat timeout bounds the 30 s repeat linger to 0.2 s: the refresh lands
    long before the silence it answers would mark the agent Offline."""
    agent = declared_agent(AGENT_ID, AGENT_ID)
    agent["spec"] = {"agentId": AGENT_ID, "heartbeatTimeoutSeconds": 2}
    kube.put(agent)
    writer = writer_for(kube, linger=0.01, repeat_linger=30.0)
    await writer.submit(AGENT_ID, agent_report("active", 0))
    await writer.aclose()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.submit(AGENT_ID, agent_report("active", 1))  # a repeat
    await writer.aclose()
    assert 0.15 <= loop.time() - started < 2.0
    assert len(kube.reports(AGENT_ID)) == 2
