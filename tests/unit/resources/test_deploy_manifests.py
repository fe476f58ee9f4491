"""The deploy/ manifests agree with the rest of the repository (no kubectl needed; the API
server's own checks are in tests/integration/test_deploy.py)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
INSTANCE = REPO / "deploy" / "instance"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


DEPLOYMENTS = ("operator-deployment.yaml", "sidecar-deployment.yaml")


def _deployments() -> list[dict[str, Any]]:
    return [_load(INSTANCE / name) for name in DEPLOYMENTS]


def _containers() -> list[dict[str, Any]]:
    return [c for d in _deployments() for c in d["spec"]["template"]["spec"]["containers"]]


def test_each_process_runs_replicated_under_its_own_account_with_an_expiring_token() -> None:
    accounts = set()
    for deployment in _deployments():
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        assert spec["replicas"] >= 2, deployment["metadata"]["name"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert pod["automountServiceAccountToken"] is False
        accounts.add(pod["serviceAccountName"])
        (token,) = [v for v in pod["volumes"] if v["name"] == "token"]
        (source,) = [s for s in token["projected"]["sources"] if "serviceAccountToken" in s]
        assert source["serviceAccountToken"]["expirationSeconds"] <= 3607
        assert "podAntiAffinity" in pod["affinity"]
        for container in pod["containers"]:
            assert "readinessProbe" in container, container["name"]
    assert accounts == {"opscore-operator", "opscore-sidecar"}
    rendered = "".join(p.read_text() for p in INSTANCE.glob("*.yaml"))
    assert "kubernetes.io/service-account-token" not in rendered  # no long-lived token


def test_every_deployment_has_a_disruption_budget_that_selects_it() -> None:
    budgets = [b for b in yaml.safe_load_all((INSTANCE / "pdb.yaml").read_text()) if b]
    for deployment in _deployments():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, deployment["metadata"]["name"]
        assert matching[0]["spec"]["minAvailable"] == 1


def test_the_operator_deployment_turns_leader_election_on() -> None:
    (operator,) = _load(INSTANCE / "operator-deployment.yaml")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e for e in operator["env"]}
    assert env["OPSCORE_LEADER_ELECTION"]["value"] == "true"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_crd_kustomization_lists_every_generated_crd() -> None:
    listed = _load(REPO / "crds" / "Kustomization")["resources"]
    assert sorted(listed) == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))


def test_every_container_runs_locked_down_with_probes_and_limits() -> None:
    for container in _containers():
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        assert {"livenessProbe", "startupProbe"} <= container.keys(), container["name"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]


def test_the_image_tags_match_the_project_version_and_the_kind_build() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert {c["image"] for c in _containers()} == {f"opscore:{version}"}
    kind = _load(REPO / "deploy" / "overlays" / "kind" / "kustomization.yaml")
    (override,) = kind["images"]
    match = re.search(r"^IMAGE \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match is not None
    assert f"{override['name']}:{override['newTag']}" == match.group(1)


# What the Dockerfile copies into the image: opscore_logic and every package under
# operator/ (opscore_testbed, opscore_client and opscore_cli stay out).
IMAGE_PACKAGES = {"opscore_logic"} | {
    path.name for path in (REPO / "operator").iterdir() if (path / "__init__.py").exists()
}


def test_the_image_packages_import_nothing_the_dockerfile_leaves_out() -> None:
    sources = [*(REPO / "opscore_logic").rglob("*.py"), *(REPO / "operator").rglob("*.py")]
    imported: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert {name for name in imported if name.startswith("opscore")} <= IMAGE_PACKAGES
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY opscore_logic/ opscore_logic/" in dockerfile
    assert "COPY operator/ operator/" in dockerfile
