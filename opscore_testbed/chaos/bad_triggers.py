"""F7's webhook-trigger door: bad and hostile calls to `POST /v1/opscore/triggers/...`.

`install` puts two WorkflowTriggers into the run's namespace (with their Secret and a
template whose one step needs a capability no agent has, so the few calls that are
accepted start runs that wait and never take an agent from the good workload):
`f7-trigger` (hmac, `subject` <- `issue.title`, 4 KiB bodies) and `f7-slow` (1 call per
minute). `check` sends one case of `corpus/triggers.yaml` and judges the answer like the
sidecar cases (`bad_input.judge_answer`).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from opscore_kube import SECRETS, WORKFLOW_TEMPLATES, WORKFLOW_TRIGGERS, KubeClient
from opscore_logic.trigger import sign
from opscore_testbed.chaos.corpus import dumps, expand

SECRET = b"f7-trigger-secret"
TRIGGER = "f7-trigger"
SLOW = "f7-slow"
MAX_BODY = 4096
Case = dict[str, Any]
_GROUP = WORKFLOW_TRIGGERS.api_version


def _trigger(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": _GROUP,
        "kind": "WorkflowTrigger",
        "metadata": {"name": name},
        "spec": {
            "templateRef": {"name": "f7-triggered"},
            "inputsFromBody": {"subject": "issue.title"},
            "auth": {"hmac": {"secretRef": {"name": "f7-trigger", "key": "secret"}}},
            **spec,
        },
    }


async def install(kube: KubeClient, namespace: str) -> None:
    """The triggers, their Secret and their template (see the module docstring)."""
    await kube.create(
        SECRETS,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "f7-trigger"},
            "data": {"secret": base64.b64encode(SECRET).decode()},
        },
    )
    await kube.create(
        WORKFLOW_TEMPLATES,
        namespace,
        {
            "apiVersion": _GROUP,
            "kind": "WorkflowTemplate",
            "metadata": {"name": "f7-triggered"},
            "spec": {
                "parameters": [{"name": "subject", "required": True}],
                "steps": [{"name": "wait", "capabilities": ["f7-no-agent-has-this"]}],
            },
        },
    )
    await kube.create(WORKFLOW_TRIGGERS, namespace, _trigger(TRIGGER, maxBodyBytes=MAX_BODY))
    await kube.create(
        WORKFLOW_TRIGGERS, namespace, _trigger(SLOW, rateLimit={"requestsPerMinute": 1, "burst": 1})
    )


def body_of(case: Case) -> bytes:
    if "raw" in case:
        return str(expand(case["raw"])).encode()
    if "json" in case:
        return dumps(expand(case["json"])).encode()
    return json.dumps({"action": "opened", "issue": {"title": f"F7 {case['id']}"}}).encode()


def headers_of(case: Case, body: bytes) -> dict[str, str]:
    """`sign`: none, {secret: TEXT}, {other_body: true} or {header: TEXT}; default right."""
    how = case.get("sign", {})
    headers = {"Content-Type": "application/json", **case.get("headers", {})}
    if how == "none":
        return headers
    if "header" in how:
        return {**headers, "X-Hub-Signature-256": how["header"]}
    secret = how["secret"].encode() if "secret" in how else SECRET
    signed = b'{"captured": "another call"}' if how.get("other_body") else body
    return {**headers, "X-Hub-Signature-256": sign(secret, signed)}


def path_of(case: Case, namespace: str) -> str:
    where = quote(str(expand(case.get("namespace", namespace))), safe="")
    name = quote(str(expand(case.get("trigger", TRIGGER))), safe="")
    return f"/v1/opscore/triggers/{where}/{name}"
