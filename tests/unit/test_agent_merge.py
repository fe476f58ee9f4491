"""The operator merges an Agent Ops-Core created into the Agent a user declared for the same
agent id: registration fields and reports are handed over first, the duplicate is deleted
only if it did not change meanwhile, and its counters are carried exactly once."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opscore_kube import AGENTS, Conflict, NotFound
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_logic.registration import CREATED_BY_ANNOTATION, CREATED_BY_WEBHOOK
from opscore_operator.agentkit_marks import MissingInAgentKit
from opscore_operator.agents import AgentIndex, AgentReconciler
from opscore_operator.ledger import Ledger
from opscore_operator.store import ObjectCache
from opscore_operator.workqueue import WorkQueue

NS = "ns"
AGENT_ID = "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a"


def merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


class FakeKube:
    """Agents in memory with what the merge relies on: merge patches, a resourceVersion
    precondition in a patch body, and delete preconditions."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._rv = itertools.count(1)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        obj["metadata"].setdefault("namespace", NS)
        self.objects[obj["metadata"]["name"]] = obj
        return copy.deepcopy(obj)

    async def patch(
        self, resource: Any, namespace: str, name: str, patch: Any, *, status: bool = False
    ) -> dict[str, Any]:
        self.calls.append(("patch_status" if status else "patch", name))
        if name not in self.objects:
            raise NotFound(404, "NotFound", name)
        current = self.objects[name]
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        if status:
            updated = dict(current, status=merge(current.get("status"), patch.get("status")))
        else:
            updated = merge(current, {k: v for k, v in patch.items() if k != "status"})
        return self.put(updated)

    async def delete(
        self, resource: Any, namespace: str, name: str, *, preconditions: Any = None
    ) -> dict[str, Any]:
        self.calls.append(("delete", name))
        if name not in self.objects:
            raise NotFound(404, "NotFound", name)
        meta = self.objects[name]["metadata"]
        if preconditions and preconditions.get("resourceVersion") != meta["resourceVersion"]:
            raise Conflict(409, "Conflict", "precondition failed")
        return self.objects.pop(name)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def record(self, body: dict[str, Any], *, type: str, reason: str, message: str) -> None:
        self.events.append((body["metadata"]["name"], reason))


# Reports are stamped relative to when each test starts (not when the module was
# imported): the operator compares them with the real clock and a 300 s heartbeat.
_start = [datetime.now(UTC)]


@pytest.fixture(autouse=True)
def _fresh_start() -> None:
    _start[0] = datetime.now(UTC).replace(microsecond=0)


def report(state: str, second: int) -> dict[str, Any]:
    stamp = (_start[0] + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"state": state, "timestamp": stamp, "receivedAt": stamp, "details": {}}


class World:
    def __init__(self) -> None:
        self.kube = FakeKube()
        self.cache = ObjectCache()
        self.index = AgentIndex()
        self.ledger = Ledger()
        self.recorder = Recorder()
        self.queue: WorkQueue[tuple[str, str]] = WorkQueue()
        self.reconciler = AgentReconciler(
            kube=self.kube,  # type: ignore[arg-type]
            agents=self.cache,
            ledger=self.ledger,
            missing_agents=MissingInAgentKit(),
            queue=self.queue,
            workflow_queue=WorkQueue(),
            recorder=self.recorder,  # type: ignore[arg-type]
            index=self.index,
        )

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        stored = self.kube.put(obj)
        self.seen(stored)
        return stored

    def seen(self, body: dict[str, Any]) -> None:
        """A watch event for `body`."""
        self.cache.upsert(body)
        self.index.note(body)

    async def reconcile(self, name: str) -> None:
        await self.reconciler.reconcile((NS, name))
        for body in list(self.kube.objects.values()):  # watch events for what changed
            self.seen(copy.deepcopy(body))
        for key in self.cache.snapshot_keys():
            if key[1] not in self.kube.objects:
                body = self.cache.get(key)
                assert body is not None
                self.cache.delete(body)
                self.index.drop(body)


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
