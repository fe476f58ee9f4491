"""Agents freed one at a time wake one waiting workflow each.

Each task's end is its own `wake_waiters` call. Until this rule, every call woke the first
waiter in the room, which absorbed them all (the work queue runs a key once however often
it is added) while its own write was in flight: B1 ran one task at a time on 20 agents.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_mock import MockerFixture

from opscore_logic.workflow_model import Step
from opscore_operator.agentkit_marks import MissingInAgentKit
from opscore_operator.ledger import Ledger
from opscore_operator.store import Key, ObjectCache
from opscore_operator.waiting import Waiter, WaitingRoom
from opscore_operator.workflow_reconciler import WorkflowReconciler
from opscore_operator.workqueue import WorkQueue

NS = "team"
CREATED = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def idle_agent(name: str, version: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "metadata": {
            "namespace": NS,
            "name": name,
            "resourceVersion": str(version),
            "generation": 1,
        },
        "spec": {"capabilities": ["work"], "heartbeatTimeoutSeconds": 300},
        "status": {"reports": [{"state": "idle", "timestamp": now, "receivedAt": now}]},
    }


@pytest.fixture
def reconciler(mocker: MockerFixture) -> WorkflowReconciler:
    agents = ObjectCache()
    waiting = WaitingRoom()
    for index in range(5):
        waiting.set(
            Waiter(
                workflow=(NS, f"wf-{index}"),
                priority=0,
                created=CREATED + timedelta(seconds=index),
                steps=(Step(name="s1", capabilities=["work"]),),
            )
        )
    reconciler = WorkflowReconciler(
        kube=mocker.Mock(),
        agentkit=mocker.Mock(),
        workflows=ObjectCache(),
        agents=agents,
        templates=ObjectCache(),
        ledger=Ledger(),
        waiting=waiting,
        missing_agents=MissingInAgentKit(),
        queue=WorkQueue[Key](),
        agent_queue=WorkQueue[Key](),
        recorder=mocker.Mock(),
    )
    for index, name in enumerate(("a1", "a2", "a3")):  # after: the agent pool listens
        agents.upsert(idle_agent(name, index + 1))
    return reconciler


async def queued(queue: WorkQueue[Key]) -> list[str]:
    """The workflows woken, in the order workers will take them."""
    return [(await queue.get())[1] for _ in range(len(queue))]


async def test_each_freed_agent_wakes_the_next_waiter_not_the_first_again(
    reconciler: WorkflowReconciler,
) -> None:
    for agent in ("a1", "a2", "a3"):
        reconciler.wake_waiters(NS, {agent})

    assert await queued(reconciler.queue) == ["wf-0", "wf-1", "wf-2"]


async def test_a_waiter_whose_pass_is_under_way_is_passed_over(
    reconciler: WorkflowReconciler,
) -> None:
    reconciler.queue.add((NS, "wf-0"))
    assert await reconciler.queue.get() == (NS, "wf-0")  # a worker is on it now

    reconciler.wake_waiters(NS, {"a1"})

    assert await queued(reconciler.queue) == ["wf-1"]


async def test_one_call_for_every_free_agent_wakes_one_waiter_per_slot(
    reconciler: WorkflowReconciler,
) -> None:
    reconciler.wake_waiters(NS)

    assert await queued(reconciler.queue) == ["wf-0", "wf-1", "wf-2"]
