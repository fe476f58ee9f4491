"""Fixtures for tests that run against a real local control plane.

One control plane serves the whole session (starting one takes seconds and ~400 MB; two cores do
not fit one per test), and each test gets its own namespace so tests stay independent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.stack import OpsCoreStack, StackOptions

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration, so `pytest -m "not integration"` skips it."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager, started once per session."""
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """The admin kubeconfig (client certificate in group system:masters)."""
    return control_plane.kubeconfig


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards without waiting for it to go."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


# -- Ops-Core on the control plane ------------------------------------------------------


@pytest.fixture(scope="session")
def crds(control_plane: ControlPlane) -> ControlPlane:
    """The control plane with Ops-Core's CRDs installed and served."""
    from opscore_testbed.stack import install_crds

    install_crds(control_plane)
    return control_plane


@pytest.fixture
def stack_options() -> StackOptions:
    """Override in a test module (or parametrize) to change agents, timings, env."""
    return StackOptions(
        agents=("researcher:research,analysis", "writer:writing,analysis", "reviewer:review")
    )


@pytest.fixture
def stack(
    crds: ControlPlane, namespace: str, stack_options: StackOptions, tmp_path: Path
) -> Iterator[OpsCoreStack]:
    """Sidecar + operator + AgentKit simulator (real processes) for this test's namespace."""
    with OpsCoreStack(crds, namespace, tmp_path / "logs", stack_options) as running:
        yield running
