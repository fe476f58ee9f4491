"""The per-agent coalescing report writer, driven directly (no HTTP)."""

from __future__ import annotations

import asyncio

import pytest
from sidecar_fakes import AGENT_ID, NAMESPACE, FakeKube, agent_report

from opscore_kube import Unavailable
from opscore_sidecar.agent_directory import AgentDirectory
from opscore_sidecar.reports import ReportWriter, stored_reports

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def writer(kube: FakeKube) -> ReportWriter:
    return ReportWriter(kube, AgentDirectory(kube, NAMESPACE))


async def test_submit_returns_true_for_a_new_report(writer: ReportWriter) -> None:
    assert await writer.submit(AGENT_ID, agent_report("idle", 0)) is True


async def test_submit_returns_false_for_a_stored_duplicate(writer: ReportWriter) -> None:
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    assert await writer.submit(AGENT_ID, agent_report("idle", 0)) is False


async def test_duplicates_within_one_batch_count_once(writer: ReportWriter, kube: FakeKube) -> None:
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    kube.patch_gate = asyncio.Event()
    kube.status_patch_started.clear()
    first = asyncio.create_task(writer.submit(AGENT_ID, agent_report("active", 1)))
    await kube.status_patch_started.wait()
    twins = [
        asyncio.create_task(writer.submit(AGENT_ID, agent_report("idle", 2))) for _ in range(2)
    ]
    await asyncio.sleep(0)
    kube.patch_gate.set()
    assert await first is True
    assert sorted(await asyncio.gather(*twins)) == [False, True]


async def test_failed_write_fails_every_report_in_its_batch(
    writer: ReportWriter, kube: FakeKube
) -> None:
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    kube.patch_gate = asyncio.Event()
    kube.status_patch_started.clear()
    first = asyncio.create_task(writer.submit(AGENT_ID, agent_report("active", 1)))
    await kube.status_patch_started.wait()
    batch = [asyncio.create_task(writer.submit(AGENT_ID, agent_report("idle", i))) for i in (2, 3)]
    await asyncio.sleep(0)
    kube.fail_next["patch_status"] = [Unavailable(503, "ServiceUnavailable", "etcd")]
    kube.patch_gate.set()
    assert await first is True
    results = await asyncio.gather(*batch, return_exceptions=True)
    assert all(isinstance(result, Unavailable) for result in results)
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["idle", "active"]


async def test_write_after_a_failure_reads_the_object_again(
    writer: ReportWriter, kube: FakeKube
) -> None:
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    kube.fail_next["patch_status"] = [Unavailable(503, "ServiceUnavailable", "etcd")]
    with pytest.raises(Unavailable):
        await writer.submit(AGENT_ID, agent_report("active", 1))
    assert writer.known_reports(AGENT_ID) is None
    await writer.submit(AGENT_ID, agent_report("idle", 2))
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["idle", "idle"]


async def test_cancelled_caller_does_not_cancel_the_shared_write(
    writer: ReportWriter, kube: FakeKube
) -> None:
    kube.patch_gate = asyncio.Event()
    abandoned = asyncio.create_task(writer.submit(AGENT_ID, agent_report("idle", 0)))
    await kube.status_patch_started.wait()
    abandoned.cancel()
    kube.patch_gate.set()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    await writer.aclose()
    assert len(kube.reports(AGENT_ID)) == 1


async def test_known_reports_follow_the_last_write(writer: ReportWriter) -> None:
    assert writer.known_reports(AGENT_ID) is None
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    assert [r.state for r in writer.known_reports(AGENT_ID) or []] == ["idle"]


def test_stored_reports_skip_entries_that_do_not_parse() -> None:
    obj = {
        "status": {
            "reports": [
                {"state": "idle", "timestamp": "2026-11-25T09:00:00Z", "receivedAt": "x"},
                {
                    "state": "idle",
                    "timestamp": "2026-11-25T09:00:00Z",
                    "receivedAt": "2026-11-25T09:00:00Z",
                },
            ]
        }
    }
    assert len(stored_reports(obj)) == 1


async def test_active_then_idle_share_one_write(kube: FakeKube) -> None:
    writer = ReportWriter(kube, AgentDirectory(kube, NAMESPACE), linger=0.5)
    await writer.submit(AGENT_ID, agent_report("idle", 0))
    before = kube.count("patch_status")
    # The reference agent awaits each report before sending the next.
    assert await writer.submit(AGENT_ID, agent_report("active", 1)) is True
    assert await writer.submit(AGENT_ID, agent_report("idle", 2)) is True
    assert kube.count("patch_status") - before == 1
    assert [r["state"] for r in kube.reports(AGENT_ID)][-2:] == ["active", "idle"]


async def test_an_idle_report_ends_the_linger_at_once(kube: FakeKube) -> None:
    writer = ReportWriter(kube, AgentDirectory(kube, NAMESPACE), linger=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    active = asyncio.create_task(writer.submit(AGENT_ID, agent_report("active", 0)))
    await asyncio.sleep(0)
    await writer.submit(AGENT_ID, agent_report("idle", 1))
    await active
    assert loop.time() - started < 1.0


async def test_a_lone_active_report_is_written_after_the_linger(kube: FakeKube) -> None:
    writer = ReportWriter(kube, AgentDirectory(kube, NAMESPACE), linger=0.05)
    await writer.submit(AGENT_ID, agent_report("active", 0))
    await writer.aclose()
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["active"]


async def test_a_heartbeat_is_acknowledged_before_it_is_written(kube: FakeKube) -> None:
    writer = ReportWriter(kube, AgentDirectory(kube, NAMESPACE), linger=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await writer.submit(AGENT_ID, agent_report("active", 0)) is True
    assert loop.time() - started < 1.0
    assert kube.count("patch_status") == 0
