"""An AgentReconciler against agents in memory: merge patches, resourceVersion
preconditions and watch events, as the operator sees them from the API server."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from opscore_kube import Conflict, NotFound
from opscore_operator.agent_reconciler import AgentIndex, AgentReconciler
from opscore_operator.agentkit_marks import MissingInAgentKit
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


def restart_clock() -> None:
    """Stamp the next reports from now (call it from an autouse fixture)."""
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
                gone = self.cache.get(key)
                assert gone is not None
                self.cache.delete(gone)
                self.index.drop(gone)
