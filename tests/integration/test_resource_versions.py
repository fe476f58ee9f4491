"""Why the operator's object cache may order bodies by resourceVersion (see
`opscore_operator.store`): against the real API server, on its one etcd, the
resourceVersions of one resource type only grow, the answer to a write carries the same
version its watch event will, and a late watch event therefore never wins over it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from opscore_kube import WORKFLOWS
from opscore_operator.store import ObjectCache, key_of
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.controlplane import ControlPlane


def _workflow(name: str) -> dict[str, Any]:
    return {
        "apiVersion": WORKFLOWS.api_version,
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": [{"name": "s1", "capabilities": ["x"]}]},
    }


async def _writes_and_their_watch(
    kubeconfig: Path, namespace: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Interleaved writes to two Workflows, one at a time; (answers, watch events)."""
    async with BenchKube.from_kubeconfig(str(kubeconfig)) as kube:
        start = (await kube.list(WORKFLOWS, namespace))["metadata"]["resourceVersion"]
        answers = [
            await kube.create(WORKFLOWS, namespace, _workflow("a")),
            await kube.create(WORKFLOWS, namespace, _workflow("b")),
            await kube.patch(
                WORKFLOWS, namespace, "a", {"status": {"phase": "Running"}}, status=True
            ),
            await kube.patch(WORKFLOWS, namespace, "b", {"metadata": {"labels": {"x": "1"}}}),
            await kube.patch(
                WORKFLOWS, namespace, "a", {"status": {"progress": "0/1"}}, status=True
            ),
        ]
        events: list[dict[str, Any]] = []

        async def collect() -> None:
            async for kind, obj in kube.watch(WORKFLOWS, namespace, start):
                if kind in ("ADDED", "MODIFIED"):
                    events.append(obj)
                if len(events) == len(answers):
                    return

        await asyncio.wait_for(collect(), timeout=30)
        return answers, events


def _latest_rv(answers: list[dict[str, Any]]) -> str:
    return str(answers[-1]["metadata"]["resourceVersion"])


def _versions(bodies: list[dict[str, Any]]) -> list[int]:
    return [int(body["metadata"]["resourceVersion"]) for body in bodies]


def test_resource_versions_of_one_kind_grow_with_every_write(
    crds: ControlPlane, namespace: str
) -> None:
    answers, events = asyncio.run(_writes_and_their_watch(crds.kubeconfig, namespace))

    written = _versions(answers)
    assert written == sorted(written)
    assert len(set(written)) == len(written)
    assert _versions(events) == written  # the watch tells them in the same order


def test_a_watch_event_older_than_our_write_does_not_replace_its_answer(
    crds: ControlPlane, namespace: str
) -> None:
    answers, events = asyncio.run(_writes_and_their_watch(crds.kubeconfig, namespace))
    cache = ObjectCache()
    latest_a = answers[-1]

    cache.upsert(latest_a)  # the answer to our last write arrives first...
    late = [e for e in events if e["metadata"]["resourceVersion"] != _latest_rv(answers)]
    for event in late:  # ...then the watch events of the earlier writes
        cache.upsert(event)

    held = cache.get(key_of(latest_a))
    assert held is not None
    assert held["metadata"]["resourceVersion"] == latest_a["metadata"]["resourceVersion"]
    assert held["status"]["progress"] == "0/1"
