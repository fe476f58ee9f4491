"""The bench attributes every write to its writer: with `ControlPlane(audit=True)` the API
server's audit log names the user of each write, so Ops-Core's ServiceAccounts, the bench's
admin and the control plane's own leases land in separate columns (issue 20)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opscore_kube import AGENTS, KubeClient, load_connection
from opscore_testbed.bench.audit import AuditLog
from opscore_testbed.bench.common import ACCOUNTS, ROLES
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import install_crds


@pytest.fixture(scope="module")
def audited() -> Iterator[ControlPlane]:
    """A control plane of its own: the session's runs without an audit log."""
    with ControlPlane(audit=True) as cp:
        install_crds(cp)
        yield cp


def agent(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "opscore.opspawn.io/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"capabilities": ["bench"], "agentName": name},
        }
    )


async def patch_status(kubeconfig: Path, namespace: str, name: str) -> None:
    kube = KubeClient(load_connection(str(kubeconfig)))
    try:
        await kube.patch(
            AGENTS, namespace, name, {"status": {"lastSeen": "2026-12-03T00:00:00Z"}}, status=True
        )
    finally:
        await kube.aclose()


def test_the_operator_account_the_admin_and_the_control_plane_are_separate_columns(
    audited: ControlPlane,
) -> None:
    cp = audited
    ns = f"t-audit-{uuid.uuid4().hex[:6]}"
    cp.kubectl("create", "namespace", ns)
    cp.kubectl("apply", "-n", ns, "-f", str(ACCOUNTS), "-f", str(ROLES))
    operator = cp.service_account_kubeconfig(ns, "opscore-operator")
    assert cp.audit_log is not None
    log = AuditLog(cp.audit_log)
    mark = log.mark()
    cp.kubectl("create", "-n", ns, "-f", "-", input=agent("a1"))  # the bench's create
    # As the operator does it: one merge PATCH of the status (kubectl would GET first).
    asyncio.run(patch_status(operator, ns, "a1"))
    # kube-apiserver renews its own Lease every 10 s: wait for one to show up.
    wait_until(
        lambda: log.writes_since(mark).writer_total("control-plane") > 0,
        timeout=30,
        what="a control-plane lease renewal in the audit log",
    )
    table = log.writes_since(mark).table()
    assert table["bench"] == {"agents": 1}
    assert table["operator"] == {"agents/status": 1}
    assert "leases" in table["control-plane"]
    assert "sidecar" not in table


def test_a_control_plane_without_audit_has_no_log(audited: ControlPlane) -> None:
    assert ControlPlane().audit is False
    assert audited.audit_log is not None
    assert audited.audit_log.exists()
