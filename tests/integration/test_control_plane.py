"""The local control plane is a real Kubernetes API, not a fake.

Each test shows one behaviour the operator's tests rely on, observed the way a user would see
it: through kubectl and the API server's own answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until

WIDGET_CRD_NAME = "widgets.testbed.opscore.dev"
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": WIDGET_CRD_NAME},
    "spec": {
        "group": "testbed.opscore.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {"replicas": {"type": "integer", "minimum": 1}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, namespace: str, replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": "testbed.opscore.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
        }
    )


def exists(cp: ControlPlane, *resource: str) -> bool:
    """Whether `kubectl get <resource>` finds the object (errors other than NotFound raise)."""
    return cp.kubectl("get", *resource, "--ignore-not-found", "-o", "name").stdout.strip() != ""


@pytest.fixture(scope="module")
def widget_crd(control_plane: ControlPlane) -> Iterator[str]:
    """The Widget CRD, applied and Established; removed after this module."""
    name = WIDGET_CRD_NAME
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(WIDGET_CRD))

    def established() -> bool:
        condition = control_plane.kubectl(
            "get", "crd", name, "-o", "jsonpath={.status.conditions[?(@.type=='Established')]}"
        ).stdout
        return condition != "" and json.loads(condition)["status"] == "True"

    wait_until(established, timeout=30, what=f"CRD {name} to be Established")
    yield name
    control_plane.kubectl("delete", "crd", name, "--wait=false", "--ignore-not-found")


def test_an_established_crd_serves_its_custom_resources(
    control_plane: ControlPlane, widget_crd: str, namespace: str
) -> None:
    control_plane.kubectl("apply", "-f", "-", input=widget("good", namespace, replicas=2))

    replicas = control_plane.kubectl(
        "get", "widget", "good", "-n", namespace, "-o", "jsonpath={.spec.replicas}"
    ).stdout
    assert replicas == "2"


def test_the_crd_schema_rejects_an_invalid_object_with_the_api_servers_error(
    control_plane: ControlPlane, widget_crd: str, namespace: str
) -> None:
    result = control_plane.kubectl(
        "apply", "-f", "-", input=widget("bad", namespace, replicas=0), check=False
    )

    assert result.returncode != 0
    assert 'The Widget "bad" is invalid' in result.stderr
    assert "spec.replicas: Invalid value: 0" in result.stderr
    assert "should be greater than or equal to 1" in result.stderr
    assert not exists(control_plane, "widget", "bad", "-n", namespace)


CONFIGMAP_READER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: configmap-reader, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader-reads-configmaps, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-reader}}
subjects:
- {{kind: ServiceAccount, name: reader, namespace: {ns}}}
"""


def list_configmaps(cp: ControlPlane, sa_kubeconfig: Path, namespace: str) -> tuple[bool, str]:
    result = cp.kubectl("get", "configmaps", "-n", namespace, kubeconfig=sa_kubeconfig, check=False)
    return result.returncode == 0, result.stderr


def test_a_service_account_without_a_role_is_forbidden(
    control_plane: ControlPlane, namespace: str
) -> None:
    sa_kubeconfig = control_plane.service_account_kubeconfig(namespace, "reader")

    allowed, stderr = list_configmaps(control_plane, sa_kubeconfig, namespace)

    assert not allowed
    assert "Forbidden" in stderr
    assert f'User "system:serviceaccount:{namespace}:reader" cannot list' in stderr


def test_a_role_binding_lets_a_service_account_list_in_its_namespace_only(
    control_plane: ControlPlane, namespace: str
) -> None:
    sa_kubeconfig = control_plane.service_account_kubeconfig(namespace, "reader")
    control_plane.kubectl("apply", "-f", "-", input=CONFIGMAP_READER.format(ns=namespace))

    wait_until(
        lambda: list_configmaps(control_plane, sa_kubeconfig, namespace)[0],
        timeout=30,
        interval=0.2,
        what="the RoleBinding to let the ServiceAccount list configmaps",
    )
    allowed_elsewhere, stderr = list_configmaps(control_plane, sa_kubeconfig, "default")
    assert not allowed_elsewhere
    assert "Forbidden" in stderr


def test_deleting_an_owner_garbage_collects_its_dependents(
    control_plane: ControlPlane, namespace: str
) -> None:
    owner_uid = control_plane.kubectl(
        "create", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
            ],
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(dependent))

    control_plane.kubectl("delete", "configmap", "owner", "-n", namespace)

    wait_until(
        lambda: not exists(control_plane, "configmap", "dependent", "-n", namespace),
        timeout=60,
        interval=0.2,
        what="the garbage collector to delete the dependent ConfigMap",
    )


def test_a_deleted_namespace_goes_away_with_its_contents(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("create", "configmap", "content", "-n", namespace)

    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")

    wait_until(
        lambda: not exists(control_plane, "namespace", namespace),
        timeout=60,
        interval=0.2,
        what=f"namespace {namespace} to finish terminating",
    )
