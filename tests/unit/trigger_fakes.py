"""A WorkflowTrigger, its Secret and its template in a FakeKube, and signed calls to it:
what the sidecar's trigger tests share (sidecar/test_sidecar_triggers and
sidecar/test_sidecar_negative)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from sidecar_fakes import NAMESPACE, FakeKube

from opscore_kube import SECRETS, WORKFLOW_TEMPLATES, WORKFLOW_TRIGGERS, WORKFLOWS
from opscore_logic.trigger import run_name, sign

TRIGGER = "on-push"
TRIGGER_URL = f"/v1/opscore/triggers/{NAMESPACE}/{TRIGGER}"
TRIGGER_SECRET = b"trigger-shared-secret"
PUSH: dict[str, Any] = {
    "ref": "refs/heads/main",
    "repository": {"full_name": "acme/shop"},
    "head_commit": {"id": "9f2c1e7"},
}


def add_trigger(kube: FakeKube, name: str = TRIGGER, **spec: Any) -> dict[str, Any]:
    """An hmac trigger mapping `repo` and `sha` from a push body (override with `spec`),
    its Secret and its template (`repo` and `sha` required, `ref` defaulted)."""
    kube.put(
        {
            "metadata": {"name": "ci-secret"},
            "data": {"token": base64.b64encode(TRIGGER_SECRET).decode()},
        },
        plural=SECRETS.plural,
    )
    kube.put(
        {
            "metadata": {"name": "build"},
            "spec": {
                "parameters": [
                    {"name": "repo", "required": True},
                    {"name": "sha", "required": True},
                    {"name": "ref", "default": "main"},
                ],
                "steps": [{"name": "build", "parameters": {"repo": "{{ inputs.repo }}"}}],
            },
        },
        plural=WORKFLOW_TEMPLATES.plural,
    )
    full = {
        "templateRef": {"name": "build"},
        "inputsFromBody": {"repo": "repository.full_name", "sha": "head_commit.id"},
        "auth": {"hmac": {"secretRef": {"name": "ci-secret", "key": "token"}}},
        **spec,
    }
    return kube.put({"metadata": {"name": name}, "spec": full}, plural=WORKFLOW_TRIGGERS.plural)


def signed(
    body: bytes, *, secret: bytes = TRIGGER_SECRET, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """Headers of a call signed with `secret`, plus `headers`."""
    signature = sign(secret, body)
    return {"Content-Type": "application/json", "X-Hub-Signature-256": signature, **(headers or {})}


# -- setups for the negative table (each a function of the FakeKube) ------------------------


def with_trigger(**spec: Any) -> Callable[[FakeKube], None]:
    """Store the trigger (with `spec` overrides), its Secret and its template."""

    def setup(kube: FakeKube) -> None:
        add_trigger(kube, **spec)

    return setup


def trigger_and(then: Callable[[FakeKube], None]) -> Callable[[FakeKube], None]:
    """The trigger, then another setup (e.g. the API server going down)."""

    def setup(kube: FakeKube) -> None:
        add_trigger(kube)
        then(kube)

    return setup


def trigger_name_taken(kube: FakeKube) -> None:
    """The trigger, and a Workflow it did not start under the name key `k` maps to."""
    uid = add_trigger(kube)["metadata"]["uid"]
    name = run_name(TRIGGER, uid, "k")
    kube.put({"metadata": {"name": name}, "spec": {}}, plural=WORKFLOWS.plural)
