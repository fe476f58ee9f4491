"""The fence under leader election, on the real API server: a status write carries the
resourceVersion its decision was made from, and the API server refuses it (409) once the
Workflow changed since, so a replica deciding from a stale cache records nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opscore_kube import WORKFLOWS, Conflict, KubeClient
from opscore_operator.status_patch import fenced_status_patch
from opscore_testbed.controlplane import ControlPlane

MANIFEST = {
    "apiVersion": WORKFLOWS.api_version,
    "kind": "Workflow",
    "metadata": {"name": "fenced"},
    "spec": {"steps": [{"name": "only", "capabilities": ["work"]}]},
}


@pytest.fixture
async def kube(crds: ControlPlane, kubeconfig: Path) -> AsyncIterator[KubeClient]:
    async with KubeClient.from_kubeconfig(str(kubeconfig), max_retries=0) as client:
        yield client


async def test_a_status_write_from_a_stale_version_is_refused(
    kube: KubeClient, namespace: str
) -> None:
    seen = await kube.create(WORKFLOWS, namespace, MANIFEST)
    # Another replica (or a user) writes first: the version `seen` is now stale.
    await kube.patch(WORKFLOWS, namespace, "fenced", {"status": {"phase": "Running"}}, status=True)
    with pytest.raises(Conflict):
        await kube.patch(
            WORKFLOWS,
            namespace,
            "fenced",
            fenced_status_patch(seen, {}, {"phase": "Succeeded"}),
            status=True,
        )
    current = await kube.get(WORKFLOWS, namespace, "fenced")
    assert current["status"]["phase"] == "Running"


async def test_a_status_write_from_the_current_version_goes_through(
    kube: KubeClient, namespace: str
) -> None:
    seen = await kube.create(WORKFLOWS, namespace, MANIFEST)
    updated = await kube.patch(
        WORKFLOWS,
        namespace,
        "fenced",
        fenced_status_patch(seen, {}, {"phase": "Running"}),
        status=True,
    )
    assert updated["status"]["phase"] == "Running"
    assert updated["metadata"]["resourceVersion"] != seen["metadata"]["resourceVersion"]
