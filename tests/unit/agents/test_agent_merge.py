"""The operator merges an Agent Ops-Core created into the Agent a user declared for the same
agent id: registration fields and reports are handed over first, the duplicate is deleted
only if it did not change meanwhile, and its counters are carried exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from agent_harness import AGENT_ID, NS, World, report, restart_clock

from opscore_kube import AGENTS
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_logic.registration import (
    CREATED_BY_ANNOTATION,
    CREATED_BY_REPORT,
    CREATED_BY_WEBHOOK,
)
from opscore_operator.agent_reconciler import AgentIndex


@pytest.fixture(autouse=True)
def _fresh_start() -> None:
    restart_clock()


@pytest.fixture
def world() -> World:
    w = World()
    w.add(
        {
            "metadata": {
                "name": AGENT_ID,
                "creationTimestamp": "2026-11-25T09:00:00Z",
                "labels": {AGENT_KEY_LABEL: agent_key(AGENT_ID)},
                "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_WEBHOOK},
            },
            "spec": {"agentId": AGENT_ID, "agentName": "summariser", "capabilities": ["sum"]},
            "status": {"reports": [report("idle", 1)], "tasksSucceeded": 2, "tasksFailed": 1},
        }
    )
    w.add(
        {
            "metadata": {"name": "my-summariser", "creationTimestamp": "2026-11-25T09:00:05Z"},
            "spec": {"agentId": AGENT_ID, "heartbeatTimeoutSeconds": 60},
        }
    )
    return w


async def test_the_declared_agent_absorbs_the_created_one(world: World) -> None:
    await world.reconcile("my-summariser")
    assert set(world.kube.objects) == {"my-summariser"}
    keeper = world.kube.objects["my-summariser"]
    assert keeper["metadata"]["labels"] == {AGENT_KEY_LABEL: agent_key(AGENT_ID)}
    assert keeper["spec"] == {
        "agentId": AGENT_ID,
        "heartbeatTimeoutSeconds": 60,
        "agentName": "summariser",
        "capabilities": ["sum"],
    }
    assert keeper["status"]["reports"] == [report("idle", 1)]
    assert ("my-summariser", "AgentMerged") in world.recorder.events
    # The next pass derives the keeper's status, counters included.
    await world.reconcile("my-summariser")
    status = world.kube.objects["my-summariser"]["status"]
    assert (status["state"], status["tasksSucceeded"], status["tasksFailed"]) == ("Idle", 2, 1)


async def test_the_duplicates_pass_only_wakes_the_keeper(world: World) -> None:
    await world.reconcile(AGENT_ID)
    assert AGENT_ID in world.kube.objects
    assert ("delete", AGENT_ID) not in world.kube.calls
    assert len(world.queue) == 1  # the keeper, to do the merge


async def test_a_report_stored_meanwhile_makes_the_delete_wait(world: World) -> None:
    original_delete = world.kube.delete

    async def delete_after_a_report(*args: Any, **kwargs: Any) -> dict[str, Any]:
        dup = world.kube.objects[AGENT_ID]
        world.kube.put(dict(dup, status={**dup["status"], "reports": [report("active", 9)]}))
        world.kube.delete = original_delete  # type: ignore[method-assign]
        return await original_delete(*args, **kwargs)

    world.kube.delete = delete_after_a_report  # type: ignore[method-assign]
    await world.reconcile("my-summariser")
    assert AGENT_ID in world.kube.objects  # not deleted: it changed after the copy
    assert world.ledger.counter_deltas((NS, "my-summariser")) == (0, 0)
    await world.reconcile("my-summariser")  # the retry copies the new report too
    assert AGENT_ID not in world.kube.objects
    states = [r["state"] for r in world.kube.objects["my-summariser"]["status"]["reports"]]
    assert states == ["idle", "active"]
    assert world.ledger.counter_deltas((NS, "my-summariser")) == (2, 1)  # carried once


async def test_two_declared_agents_are_left_alone_with_a_warning() -> None:
    world = World()
    for name, created in (("first", "T1"), ("second", "T2")):
        world.add(
            {
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"agentId": AGENT_ID},
            }
        )
    await world.reconcile("first")
    assert set(world.kube.objects) == {"first", "second"}
    assert ("first", "DuplicateAgentId") in world.recorder.events


def test_the_index_follows_agent_id_changes() -> None:
    index = AgentIndex()
    body = {"metadata": {"name": "a", "namespace": NS}, "spec": {"agentId": "x"}}
    index.note(body)
    assert index.holders(NS, "x") == {"a"}
    index.note({**body, "spec": {"agentId": "y"}})
    assert (index.holders(NS, "x"), index.holders(NS, "y")) == (set(), {"a"})
    index.drop(body)
    assert index.holders(NS, "y") == set()
    assert AGENTS.plural == "agents"


async def test_the_agent_named_at_registration_absorbs_an_older_first_contact_one() -> None:
    # The agent reported before its registration: the report created an Agent named after
    # its id, the webhook then the one named after agentName. The named one stays.
    world = World()
    world.add(
        {
            "metadata": {
                "name": AGENT_ID,
                "creationTimestamp": "2026-11-25T09:00:00Z",
                "labels": {AGENT_KEY_LABEL: agent_key(AGENT_ID)},
                "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_REPORT},
            },
            "spec": {"agentId": AGENT_ID},
            "status": {"reports": [report("idle", 1)]},
        }
    )
    world.add(
        {
            "metadata": {
                "name": "summariser",
                "creationTimestamp": "2026-11-25T09:00:01Z",
                "labels": {AGENT_KEY_LABEL: agent_key(AGENT_ID)},
                "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_WEBHOOK},
            },
            "spec": {"agentId": AGENT_ID, "agentName": "summariser"},
        }
    )
    await world.reconcile(AGENT_ID)  # the first-contact one only wakes the keeper
    await world.reconcile("summariser")
    assert set(world.kube.objects) == {"summariser"}
    assert world.kube.objects["summariser"]["status"]["reports"] == [report("idle", 1)]
