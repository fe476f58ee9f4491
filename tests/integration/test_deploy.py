"""Ops-Core as `deploy/` installs it, proven on the real API server.

kind cannot run here and this control plane has no scheduler or kubelet, so pods never
start. What can be proven is proven: every rendered manifest passes the API server's own
validation (`--dry-run=server`, Pod Security `restricted` included); the operator and the
sidecar, run as local processes with TokenRequest tokens of the ServiceAccounts that
`deploy/instance` creates, take the example workflow to Succeeded under the Roles it
grants and nothing more; and what each ServiceAccount may NOT do is listed. Then the two
operations questions of docs/operations.md: what an operator restart costs, and whether
two operators split the work by namespace without overlap.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack, StackOptions

DEPLOY = REPO / "deploy"
INSTANCE = DEPLOY / "instance"
HELLO = REPO / "examples" / "hello-workflow.yaml"
TRIGGER_EXAMPLE = REPO / "examples" / "issue-trigger.yaml"
GROUP = "opscore.opspawn.io"
AGENTS = ("researcher:research,analysis", "writer:writing,analysis", "reviewer:review")
CRD_COUNT = len(list((REPO / "crds").glob("*.yaml")))


def _render(cp: ControlPlane, kustomization: Path) -> str:
    return cp.kubectl("kustomize", str(kustomization)).stdout


def _docs(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _agents_ready(cp: ControlPlane, namespace: str, names: tuple[str, ...]) -> None:
    def ready() -> bool:
        agents = [kv.agent_named(cp, namespace, n) for n in names]
        return all(a is not None and kv.is_ready(a) for a in agents)

    wait_until(ready, timeout=90, what=f"agents {names} Ready in {namespace}")


def _wait_succeeded(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    cp.kubectl(
        "wait", "-n", namespace, f"workflow/{name}", "--for=condition=Succeeded",
        "--timeout=90s", timeout=120,
    )  # fmt: skip
    workflow: dict[str, Any] = kv.get(cp, "workflow", namespace, name)
    return workflow


# -- 1. every manifest passes the API server's validation ---------------------------------


@pytest.fixture(scope="module")
def opscore_system(crds: ControlPlane) -> Iterator[ControlPlane]:
    """The Namespace the base installs into, applied for real (a dry run of the objects in
    it needs it to exist), removed afterwards."""
    crds.kubectl("apply", "--server-side", "-f", str(INSTANCE / "namespace.yaml"))
    yield crds
    crds.kubectl("delete", "namespace", "opscore-system", "--wait=false", "--ignore-not-found")


@pytest.mark.parametrize("kustomization", ["deploy", "deploy/base", "deploy/overlays/kind"])
def test_every_manifest_passes_server_side_dry_run(
    opscore_system: ControlPlane, kustomization: str
) -> None:
    cp = opscore_system
    rendered = _render(cp, REPO / kustomization)
    kinds = sorted(doc["kind"] for doc in _docs(rendered))
    assert kinds == sorted(
        ["Namespace", *["CustomResourceDefinition"] * CRD_COUNT, "ServiceAccount", "ServiceAccount",
         "Role", "Role", "RoleBinding", "RoleBinding", "ConfigMap", "Secret",
         "Deployment", "Deployment", "PodDisruptionBudget", "PodDisruptionBudget", "Service",
         "NetworkPolicy",
         # deploy/approvals: the approver ClusterRole and the admission policy + binding.
         "ClusterRole", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    )  # fmt: skip
    result = cp.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=rendered)
    assert result.stdout.count("(server dry run)") == len(kinds)
    # The namespace enforces Pod Security `restricted`: a violating pod template would be
    # reported here as a warning.
    assert "Warning" not in result.stderr, result.stderr


# -- 2. least privilege: sufficient ------------------------------------------------------


@dataclass(frozen=True)
class Install:
    cp: ControlPlane
    namespace: str
    other_namespace: str


@pytest.fixture(scope="module")
def install(crds: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """deploy/instance applied for real into a fresh namespace, the way an overlay installs
    a second instance: `namespace:` plus the watched namespace in the ConfigMap."""
    cp = crds
    suffix = uuid.uuid4().hex[:8]
    namespace, other = f"t-deploy-{suffix}", f"t-other-{suffix}"
    overlay = tmp_path_factory.mktemp("overlay")
    # kustomize refuses absolute paths to a base; a relative one may leave the root.
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": [os.path.relpath(INSTANCE, overlay)],
                "patches": [
                    {
                        "patch": yaml.safe_dump(
                            {
                                "apiVersion": "v1",
                                "kind": "ConfigMap",
                                "metadata": {"name": "opscore-settings"},
                                "data": {"OPSCORE_NAMESPACE": namespace},
                            }
                        )
                    }
                ],
            }
        )
    )
    rendered = _render(cp, overlay)
    assert "opscore-system" not in rendered, "the overlay retargets every reference"
    cp.kubectl("apply", "--server-side", "-f", "-", input=rendered)
    cp.kubectl("create", "namespace", other)
    yield Install(cp, namespace, other)
    for ns in (namespace, other):
        cp.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def test_operator_and_sidecar_run_the_example_with_their_own_service_accounts(
    install: Install, tmp_path: Path
) -> None:
    cp, ns = install.cp, install.namespace
    options = StackOptions(
        agents=AGENTS,
        operator_env={
            "KUBECONFIG": str(cp.service_account_kubeconfig(ns, "opscore-operator")),
            # As deployed: the operator takes and renews its Lease under its own Role.
            "OPSCORE_LEADER_ELECTION": "true",
        },
        sidecar_env={"KUBECONFIG": str(cp.service_account_kubeconfig(ns, "opscore-sidecar"))},
    )
    with OpsCoreStack(cp, ns, tmp_path / "logs", options) as stack:
        # Registration webhook and first reports: the sidecar creates and patches Agents.
        _agents_ready(cp, ns, ("researcher", "writer", "reviewer"))
        cp.kubectl("apply", "-n", ns, "-f", str(HELLO))
        # A finished workflow with a TTL: the operator deletes it.
        cp.kubectl("apply", "-n", ns, "-f", "-", input=_one_step("short-lived", ttl=1))
        # A user-declared Agent: the operator labels it.
        cp.kubectl("apply", "-n", ns, "-f", "-", input=_declared_agent("declared"))

        hello = _wait_succeeded(cp, ns, "hello")
        assert hello["status"]["progress"] == "3/3"
        # The dashboard reads runs, templates and Events under the sidecar's own Role.
        key = {"Authorization": f"Bearer {options.api_key}"}
        for path in ("agents", "workflows", "workflows/hello", "workflows/hello/events"):
            url = f"{stack.sidecar_url}/dashboard/api/{path}"
            answer = httpx.get(url, headers=key, trust_env=False, timeout=10)
            assert answer.status_code == 200, (path, answer.text)
        _trigger_starts_a_run(cp, ns, stack.sidecar_url)
        cp.kubectl(
            "wait", "-n", ns, "workflow/short-lived", "--for=delete", "--timeout=60s", timeout=90
        )
        wait_until(
            lambda: bool(kv.get(cp, "agent", ns, "declared")["metadata"].get("labels")),
            timeout=30,
            what="the operator to label the declared Agent",
        )
        reasons = {e["reason"] for e in kv.items(cp, "events", ns)}
        assert reasons, "the operator posted Events"
        for process in (stack.operator, stack.sidecar):
            assert process is not None
            log = process.log_path.read_text()
            assert not re.search(r"\b403\b|[Ff]orbidden", log), f"{process.name}: {log[-2000:]}"


def _trigger_starts_a_run(cp: ControlPlane, ns: str, sidecar_url: str) -> None:
    """The example trigger (its Secret, and a one-step `weekly-report`): a signed call is
    answered 202 under the sidecar's Role (it reads the trigger, the Secret, the template
    and creates the Workflow)."""
    template = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "weekly-report"},
        "spec": {
            "parameters": [{"name": "subject", "required": True}],
            "steps": [{"name": "only", "agent": "researcher", "task": "{{ inputs.subject }}"}],
        },
    }
    cp.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(template))
    cp.kubectl("apply", "-n", ns, "-f", str(TRIGGER_EXAMPLE))
    body = b'{"issue": {"title": "RBAC is enough"}}'
    signature = "sha256=" + hmac.new(b"change-me", body, hashlib.sha256).hexdigest()
    answer = httpx.post(
        f"{sidecar_url}/v1/opscore/triggers/{ns}/issue-write-up",
        content=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        trust_env=False,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def _one_step(name: str, *, ttl: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {
                "ttlSecondsAfterFinished": ttl,
                "steps": [{"name": "only", "agent": "researcher", "task": "research"}],
            },
        }
    )


def _declared_agent(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"agentName": name, "capabilities": ["none"]},
        }
    )


# -- 3. least privilege: minimal ---------------------------------------------------------

# Everything each ServiceAccount may do in its namespace, as `kubectl auth can-i --list`
# shows it, without the self-review rights every authenticated user has.
EXPECTED_RULES = {
    "opscore-operator": {
        f"workflows.{GROUP}": {"get", "list", "watch", "create", "delete"},
        f"workflows.{GROUP}/status": {"patch"},
        f"workflowschedules.{GROUP}": {"get", "list", "watch"},
        f"workflowschedules.{GROUP}/status": {"patch"},
        f"workflowschedules.{GROUP}/finalizers": {"update"},
        f"agents.{GROUP}": {"get", "list", "watch", "patch", "delete"},
        f"agents.{GROUP}/status": {"patch"},
        f"workflowtemplates.{GROUP}": {"get", "list", "watch"},
        f"approvals.{GROUP}": {"get", "list", "watch"},
        "events": {"create"},
        "leases.coordination.k8s.io": {"create"},
        "leases.coordination.k8s.io/opscore-operator": {"get", "patch"},
    },
    "opscore-sidecar": {
        f"agents.{GROUP}": {"get", "list", "create", "patch"},
        f"agents.{GROUP}/status": {"patch"},
        f"workflows.{GROUP}": {"create", "get", "list"},
        f"workflowtemplates.{GROUP}": {"get"},
        f"workflowtriggers.{GROUP}": {"get"},
        "secrets": {"get"},
        "events": {"list"},
    },
}
EVERYONE = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}


def _rules(cp: ControlPlane, user: str, namespace: str) -> dict[str, set[str]]:
    table = cp.kubectl("auth", "can-i", "--list", "-n", namespace, f"--as={user}").stdout
    rules: dict[str, set[str]] = {}
    for line in table.splitlines()[1:]:
        if line[:1].isspace():
            continue  # non-resource URLs (discovery, /healthz...), open to everyone
        # RESOURCE  [non-resource URLs]  [resource names]  [verbs]
        resource = line.split()[0]
        _urls, names, verbs = re.findall(r"\[([^\]]*)\]", line)[-3:]
        if names:  # a rule narrowed to named objects: RESOURCE/NAME
            resource = f"{resource}/{names}"
        if resource not in EVERYONE:
            rules.setdefault(resource, set()).update(verbs.split())
    return rules


@pytest.mark.parametrize("account", sorted(EXPECTED_RULES))
def test_each_service_account_has_exactly_its_rules_and_only_in_its_namespace(
    install: Install, account: str
) -> None:
    user = f"system:serviceaccount:{install.namespace}:{account}"
    assert _rules(install.cp, user, install.namespace) == EXPECTED_RULES[account]
    assert _rules(install.cp, user, install.other_namespace) == {}
    assert _rules(install.cp, user, "kube-system") == {}


# What a compromised process could try, spelled out: (verb, resource, namespace or None
# for cluster scope, or "other" for another namespace). Every one must be refused.
FORBIDDEN = {
    "opscore-operator": [
        ("get", "secrets", "own"),
        ("list", "secrets", None),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("list", "namespaces", None),
        ("list", f"workflows.{GROUP}", "other"),
        ("patch", f"workflows.{GROUP}/status", "other"),
        ("delete", f"workflows.{GROUP}", "other"),
        ("list", f"workflows.{GROUP}", None),
        ("create", f"workflows.{GROUP}", "other"),
        ("patch", f"workflows.{GROUP}", "own"),
        ("patch", f"workflowschedules.{GROUP}", "own"),
        ("create", f"workflowschedules.{GROUP}", "own"),
        ("update", f"workflows.{GROUP}/status", "own"),
        ("create", f"agents.{GROUP}", "own"),
        ("patch", f"workflowtemplates.{GROUP}", "own"),
        # The operator judges Approvals; one it could write would approve anything.
        ("create", f"approvals.{GROUP}", "own"),
        ("delete", f"approvals.{GROUP}", "own"),
        ("create", "pods", "own"),
        ("create", "rolebindings.rbac.authorization.k8s.io", "own"),
        ("impersonate", "serviceaccounts", "own"),
    ],
    "opscore-sidecar": [
        # `get` on secrets in its own namespace: the one a WorkflowTrigger names.
        ("list", "secrets", "own"),
        ("watch", "secrets", "own"),
        ("get", "secrets", "other"),
        ("list", "secrets", None),
        ("list", f"workflowtriggers.{GROUP}", "own"),
        ("patch", f"workflowtriggers.{GROUP}", "own"),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("list", "namespaces", None),
        ("patch", f"workflows.{GROUP}/status", "own"),
        ("patch", f"workflows.{GROUP}", "own"),
        ("delete", f"workflows.{GROUP}", "own"),
        ("watch", f"workflows.{GROUP}", "own"),
        ("list", f"workflows.{GROUP}", "other"),
        ("get", "events", "own"),
        ("watch", f"agents.{GROUP}", "own"),
        ("delete", f"agents.{GROUP}", "own"),
        ("list", f"workflowtemplates.{GROUP}", "own"),
        ("list", f"agents.{GROUP}", "other"),
        ("patch", f"agents.{GROUP}/status", "other"),
        ("create", f"workflows.{GROUP}", "other"),
        ("create", "events", "own"),
        ("create", f"approvals.{GROUP}", "own"),
    ],
}


@pytest.mark.parametrize("account", sorted(FORBIDDEN))
def test_what_each_service_account_may_not_do(install: Install, account: str) -> None:
    user = f"system:serviceaccount:{install.namespace}:{account}"
    allowed = []
    for verb, resource, where in FORBIDDEN[account]:
        scope = (
            ["--all-namespaces"]
            if where is None
            else ["-n", install.namespace if where == "own" else install.other_namespace]
        )
        answer = install.cp.kubectl(
            "auth", "can-i", verb, resource, *scope, f"--as={user}", check=False
        ).stdout.strip()
        if answer != "no":
            allowed.append((verb, resource, where, answer))
    assert allowed == []


# -- 4. one replica: what a restart costs ------------------------------------------------


def _relay(name: str, steps: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {
                # A kill between a dispatch's status write and its POST leaves that
                # attempt unsent (docs/reliability.md, "Per window"): the attempt
                # timeout turns it into a new attempt instead of an hour's wait.
                "steps": [
                    {
                        "name": f"leg-{i}",
                        "agent": "researcher",
                        "task": "research",
                        "timeoutSeconds": 5,
                        "retries": {"limit": 3},
                    }
                    for i in range(steps)
                ]
            },
        }
    )


def _started(workflow: dict[str, Any]) -> list[float]:
    """When each started step's first attempt was dispatched."""
    return _times(workflow, "startedAt")


def _dispatched(workflow: dict[str, Any]) -> list[float]:
    """When each started step's current attempt was dispatched (a retry moves it on)."""
    return _times(workflow, "dispatchedAt")


def _times(workflow: dict[str, Any], key: str) -> list[float]:
    return [
        datetime.fromisoformat(s[key].replace("Z", "+00:00")).timestamp()
        for s in (workflow.get("status") or {}).get("steps", [])
        if s.get(key)
    ]


def test_a_killed_operator_is_replaced_and_dispatches_again_within_seconds(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """SIGKILL the operator while a step runs (the step finishes meanwhile: its agent's
    report reaches the sidecar, which stays up), start a new one at once, as the kubelet
    restarts a crashed container: the time from the kill to the next step's dispatch is
    what a restart costs. docs/operations.md quotes the numbers printed here."""
    cp = crds
    options = StackOptions(agents=("researcher:research",), task_seconds=0.2)
    with OpsCoreStack(cp, namespace, tmp_path / "logs", options) as stack:
        _agents_ready(cp, namespace, ("researcher",))
        cp.kubectl("apply", "-n", namespace, "-f", "-", input=_relay("relay", 4))
        costs: list[tuple[float, float]] = []
        while True:
            wait_until(
                lambda: bool(_started(kv.get(cp, "workflow", namespace, "relay"))),
                timeout=60,
                what="a step of relay to start",
            )
            if len(_started(kv.get(cp, "workflow", namespace, "relay"))) == 4:
                break
            killed = time.time()
            stack.restart_operator(kill=True)
            healthy = time.time() - killed

            def dispatched_again(killed: float = killed) -> bool:
                wf = kv.get(cp, "workflow", namespace, "relay")
                # A retry after the crash window moves dispatchedAt, not startedAt. The
                # last step may also have been dispatched between the count above and
                # the kill: then the run ends with nothing left to dispatch.
                return (
                    any(t > killed for t in _dispatched(wf))
                    or (wf.get("status") or {}).get("phase") == "Succeeded"
                )

            wait_until(dispatched_again, timeout=60, what="a dispatch by the new operator")
            after = [
                t for t in _dispatched(kv.get(cp, "workflow", namespace, "relay")) if t > killed
            ]
            if after:
                costs.append((healthy, min(after) - killed))
        relay = _wait_succeeded(cp, namespace, "relay")
        print(
            "\noperator restart (SIGKILL -> healthz, SIGKILL -> next dispatch), seconds: "
            + ", ".join(f"({h:.2f}, {d:.2f})" for h, d in costs)
        )
        assert costs, "at least one restart happened while a step ran"
        assert max(d for _, d in costs) < 30
        # At most once per task id, and every step's final attempt reached the agent.
        task_ids = [s["taskId"] for s in relay["status"]["steps"]]
        counts = stack.sim_tasks()
        assert {t: n for t, n in counts.items() if n > 1} == {}
        assert {t: counts.get(t) for t in task_ids} == dict.fromkeys(task_ids, 1)


# -- 5. scale-out: one operator per namespace ---------------------------------------------


def _dispatches(stack: OpsCoreStack) -> float:
    text = httpx.get(
        f"http://127.0.0.1:{stack.operator_metrics_port}/metrics", timeout=10, trust_env=False
    ).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("opscore_dispatches_total{")
    )


def test_two_operators_split_the_work_by_namespace_without_overlap(
    crds: ControlPlane, tmp_path: Path
) -> None:
    """Two instances, each with its own --namespace, both with admin credentials: the
    split comes from the operators' configuration alone, not from a permission wall."""
    cp = crds
    suffix = uuid.uuid4().hex[:8]
    shards = (f"t-shard-a-{suffix}", f"t-shard-b-{suffix}")
    for ns in shards:
        cp.kubectl("create", "namespace", ns)
    options = StackOptions(agents=AGENTS)
    try:
        with (
            OpsCoreStack(cp, shards[0], tmp_path / "a", options) as a,
            OpsCoreStack(cp, shards[1], tmp_path / "b", options) as b,
        ):
            for stack in (a, b):
                _agents_ready(cp, stack.namespace, ("researcher", "writer", "reviewer"))
                cp.kubectl("apply", "-n", stack.namespace, "-f", str(HELLO))
            for stack, other in ((a, b), (b, a)):
                hello = _wait_succeeded(cp, stack.namespace, "hello")
                task_ids = {s["taskId"] for s in hello["status"]["steps"]}
                assert all(t.startswith(hello["metadata"]["uid"]) for t in task_ids)
                # This shard's AgentKit got exactly this shard's tasks, once each...
                assert stack.sim_tasks() == dict.fromkeys(task_ids, 1)
                # ...and its operator dispatched nothing else (the other shard's tasks
                # would have been tried against this AgentKit and counted).
                assert _dispatches(stack) == 3
                assert stack.operator is not None
                log = stack.operator.log_path.read_text()
                assert stack.namespace in log
                assert other.namespace not in log
    finally:
        for ns in shards:
            cp.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")
