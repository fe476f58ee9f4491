"""Two sidecar replicas writing one Agent's reports (two ReportWriters on one API): each
write tests `status.reportSequence`, so neither replaces the other's reports, and what
they converge on is what one replica would have stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sidecar_fakes import AGENT_ID, NAMESPACE, FakeKube

from opscore_logic.agent_model import AgentReport
from opscore_sidecar.agent_directory import AgentDirectory
from opscore_sidecar.metrics import REPORT_WRITE_RACES
from opscore_sidecar.reports import ReportWriter

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def report(state: str, second: int) -> AgentReport:
    at = T0 + timedelta(seconds=second)
    return AgentReport(state=state, timestamp=at, received_at=at)


def replica(kube: FakeKube) -> ReportWriter:
    return ReportWriter(kube, AgentDirectory(kube, NAMESPACE))


def stored_seconds(kube: FakeKube) -> list[int]:
    return [
        int((datetime.fromisoformat(r["timestamp"]) - T0).total_seconds())
        for r in kube.reports(kube.agents()[0]["metadata"]["name"])
    ]


async def test_a_write_based_on_a_stale_list_is_retried_not_lost() -> None:
    kube = FakeKube()
    a, b = replica(kube), replica(kube)
    await a.submit(AGENT_ID, report("idle", 0))
    await b.submit(AGENT_ID, report("active", 1))  # b read the list after a's write
    races = REPORT_WRITE_RACES._value.get()
    await a.submit(AGENT_ID, report("idle", 2))  # a still holds [0]: its test fails
    assert REPORT_WRITE_RACES._value.get() == races + 1
    assert stored_seconds(kube) == [0, 1, 2]


async def test_the_operators_duplicate_merge_is_kept_by_the_next_write() -> None:
    kube = FakeKube()
    writer = replica(kube)
    await writer.submit(AGENT_ID, report("idle", 0))
    name = kube.agents()[0]["metadata"]["name"]
    # The operator hands a duplicate's report over, bumping the sequence as it must.
    agent = kube.agent(name)
    handed = report("active", 1).wire()
    agent["status"]["reports"].append(handed)
    agent["status"]["reportSequence"] += 1
    await writer.submit(AGENT_ID, report("idle", 2))
    assert stored_seconds(kube) == [0, 1, 2]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from(["idle", "active", "error"])), max_size=14)
)
def test_two_replicas_racing_store_every_report_exactly_once(
    sends: list[tuple[bool, str]],
) -> None:
    async def scenario() -> None:
        kube = FakeKube()
        await replica(kube).submit(AGENT_ID, report("idle", 0))  # the Agent exists
        # with room for every report sent here (report_limit(8) == 16): none is trimmed
        kube.agent(kube.agents()[0]["metadata"]["name"])["spec"]["maxConcurrentTasks"] = 8
        a, b = replica(kube), replica(kube)
        await asyncio.gather(
            *(
                (a if to_a else b).submit(AGENT_ID, report(state, second + 1))
                for second, (to_a, state) in enumerate(sends)
            )
        )
        assert stored_seconds(kube) == list(range(len(sends) + 1))

    asyncio.run(scenario())
