"""Rotating API keys on a running sidecar process, the way Kubernetes updates a mounted
Secret: the volume's `..data` symlink is swapped atomically to a new timestamped directory.
No restart: the next request sees the new keys, old ones stop working, and an emptied file
makes the sidecar unready. Keys never appear in its log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

OLD_KEY = "old-key-2f9c1b7e"
NEW_KEY = "new-key-8d41a0c3"
SCOPED_KEY = "scoped-key-5e7f"


class SecretVolume:
    """A directory laid out as the kubelet lays out a Secret volume (atomic writer)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        root.mkdir(parents=True)

    @property
    def keys_file(self) -> Path:
        return self.root / "api-keys"

    def publish(self, text: str) -> None:
        self.generation += 1
        data = self.root / f"..2026_11_25_{self.generation:04d}"
        data.mkdir()
        (data / "api-keys").write_text(text)
        staged = self.root / "..data_tmp"
        staged.symlink_to(data.name)
        os.replace(staged, self.root / "..data")  # the atomic swap
        if not self.keys_file.is_symlink():
            self.keys_file.symlink_to("..data/api-keys")


@pytest.fixture
def volume(tmp_path: Path) -> SecretVolume:
    secret = SecretVolume(tmp_path / "secret")
    secret.publish(f"# initial\n{OLD_KEY}\n")
    return secret


@pytest.fixture
def sidecar(
    crds: ControlPlane, namespace: str, tmp_path: Path, volume: SecretVolume
) -> Iterator[OpsCoreStack]:
    """Only the sidecar of the stack, with keys from the file alone."""
    options = StackOptions(
        sidecar_env={"OPSCORE_API_KEYS_FILE": str(volume.keys_file), "OPSCORE_API_KEY": ""}
    )
    stack = OpsCoreStack(crds, namespace, tmp_path / "logs", options)
    try:
        stack.start_sidecar()
        yield stack
    finally:
        stack.stop()


def report(stack: OpsCoreStack, key: str, agent_id: str = "rotating-agent") -> int:
    body = {
        "agentId": agent_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "state": "idle",
        "details": {},
    }
    resp = httpx.post(
        f"{stack.sidecar_url}/v1/opscore/agent/{agent_id}/state",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
        trust_env=False,
    )
    return resp.status_code


def ready(stack: OpsCoreStack) -> int:
    return httpx.get(f"{stack.sidecar_url}/readyz", timeout=10, trust_env=False).status_code


def test_keys_rotate_live_on_a_running_sidecar(sidecar: OpsCoreStack, volume: SecretVolume) -> None:
    assert report(sidecar, OLD_KEY) == 202
    assert report(sidecar, NEW_KEY) == 401
    pid = sidecar.sidecar.pid if sidecar.sidecar else None

    # Rotation, step 1: both keys valid while agents move over; a scoped key is added.
    volume.publish(f"{OLD_KEY}\n{NEW_KEY}\n{SCOPED_KEY} agent-x\n")
    wait_until(lambda: report(sidecar, NEW_KEY) == 202, timeout=10, what="the new key accepted")
    assert report(sidecar, OLD_KEY) == 202
    assert report(sidecar, SCOPED_KEY, "agent-x") == 202
    assert report(sidecar, SCOPED_KEY, "agent-y") == 403

    # Step 2: the old key is revoked.
    volume.publish(f"{NEW_KEY}\n")
    wait_until(lambda: report(sidecar, OLD_KEY) == 401, timeout=10, what="the old key revoked")
    assert report(sidecar, NEW_KEY) == 202
    assert report(sidecar, SCOPED_KEY, "agent-x") == 401

    # An emptied Secret leaves no key: unready (and every report 401) until one is back.
    volume.publish("# no keys\n")
    wait_until(lambda: ready(sidecar) == 503, timeout=10, what="unready without keys")
    assert report(sidecar, NEW_KEY) == 401
    volume.publish(f"{NEW_KEY}\n")
    wait_until(lambda: ready(sidecar) == 200, timeout=10, what="ready again")
    assert report(sidecar, NEW_KEY) == 202

    assert sidecar.sidecar is not None
    assert sidecar.sidecar.pid == pid, "no restart"
    log = (sidecar.log_dir / "sidecar.log").read_text()
    assert "API keys loaded" in log
    for key in (OLD_KEY, NEW_KEY, SCOPED_KEY):
        assert key not in log
