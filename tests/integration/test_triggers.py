"""Webhook triggers on the real control plane, over real HTTP to a real sidecar process:
a signed call starts a Workflow that runs to Succeeded; a repeated delivery (also after
a lost answer) yields the same Workflow and exactly one exists; each bad call gets its
documented status and starts nothing.

The WorkflowTrigger, its Secret and its template are applied with kubectl, as a user
would; the calls are signed like GitHub signs them (HMAC-SHA256 of the raw body).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_support import FINISHED, agents_ready, apply
from prometheus_client.parser import text_string_to_metric_families

from opscore_kube.faults import ENV as WRITE_FAULTS
from opscore_logic.trigger import sign
from opscore_testbed import kube_views as kv
from opscore_testbed.processes import free_port, wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

API_VERSION = "opscore.opspawn.io/v1alpha1"
SECRET = b"s3cr3t-for-the-trigger"
TRIGGER_ANNOTATION = "opscore.opspawn.io/trigger"
PUSH: dict[str, Any] = {
    "ref": "refs/heads/main",
    "repository": {"full_name": "acme/shop"},
    "head_commit": {"id": "9f2c1e7"},
}

Body = dict[str, Any]


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(agents=("builder:build",), task_seconds=0.2)


def manifests(name: str = "on-push", **spec: Any) -> list[Body]:
    """The Secret, the template (repo and sha required) and an hmac trigger."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ci-hook"},
        "data": {"token": base64.b64encode(SECRET).decode()},
    }
    template = {
        "apiVersion": API_VERSION,
        "kind": "WorkflowTemplate",
        "metadata": {"name": "build"},
        "spec": {
            "parameters": [{"name": "repo", "required": True}, {"name": "sha", "required": True}],
            "steps": [
                {
                    "name": "build",
                    "capabilities": ["build"],
                    "parameters": {"repo": "{{ inputs.repo }}", "sha": "{{ inputs.sha }}"},
                }
            ],
        },
    }
    trigger = {
        "apiVersion": API_VERSION,
        "kind": "WorkflowTrigger",
        "metadata": {"name": name},
        "spec": {
            "templateRef": {"name": "build"},
            "inputsFromBody": {"repo": "repository.full_name", "sha": "head_commit.id"},
            "auth": {"hmac": {"secretRef": {"name": "ci-hook", "key": "token"}}},
            **spec,
        },
    }
    return [secret, template, trigger]


def call(
    base: str,
    namespace: str,
    name: str,
    body: bytes,
    *,
    secret: bytes = SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One POST to the trigger path, signed with `secret` (a fresh connection each)."""
    sent = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
    sent.update(headers or {})
    return httpx.post(
        f"{base}/v1/opscore/triggers/{namespace}/{name}",
        content=body,
        headers=sent,
        trust_env=False,
        timeout=30,
    )


def started_by(stack: OpsCoreStack, trigger: str) -> list[Body]:
    return [
        wf
        for wf in kv.items(stack.cp, "workflows", stack.namespace)
        if (wf["metadata"].get("annotations") or {}).get(TRIGGER_ANNOTATION) == trigger
    ]


def finished(stack: OpsCoreStack, name: str, timeout: float = 90) -> Body:
    found: Body = {}

    def done() -> bool:
        found.update(kv.get(stack.cp, "workflow", stack.namespace, name))
        return (found.get("status") or {}).get("phase") in FINISHED

    wait_until(done, timeout=timeout, interval=0.2, what=f"workflow {name} to finish")
    return found


BODY = json.dumps(PUSH).encode()


def test_a_signed_call_starts_a_workflow_that_succeeds_with_the_mapped_inputs(
    stack: OpsCoreStack,
) -> None:
    apply(stack, *manifests())
    agents_ready(stack, ["builder"])
    resp = call(stack.sidecar_url, stack.namespace, "on-push", BODY)
    assert resp.status_code == 202, resp.text
    workflow = finished(stack, resp.json()["workflow"])
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    assert workflow["spec"]["inputs"] == {"repo": "acme/shop", "sha": "9f2c1e7"}
    assert workflow["spec"]["templateRef"] == {"name": "build"}


def test_a_repeated_delivery_yields_the_same_workflow_and_only_one_exists(
    stack: OpsCoreStack,
) -> None:
    apply(stack, *manifests())
    delivery = str(uuid.uuid4())
    answers = [
        call(
            stack.sidecar_url,
            stack.namespace,
            "on-push",
            BODY,
            headers={"X-GitHub-Delivery": delivery},
        )
        for _ in "ab"
    ]
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert answers[0].json()["workflow"] == answers[1].json()["workflow"]
    assert [a.json()["created"] for a in answers] == [True, False]
    assert [w["metadata"]["name"] for w in started_by(stack, "on-push")] == [
        answers[0].json()["workflow"]
    ]


@pytest.fixture
def lossy_sidecar(stack: OpsCoreStack) -> Iterator[str]:
    """A second sidecar on the same namespace whose every API write takes effect but
    loses its answer (the fault suite's seam): the caller sees 503 for a run that exists."""
    port = free_port()
    process = stack.spawn_sidecar("lossy-sidecar", port=port, env={WRITE_FAULTS: "after=1.0"})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_a_retry_after_a_lost_answer_gets_the_run_that_was_created(
    stack: OpsCoreStack, lossy_sidecar: str
) -> None:
    apply(stack, *manifests())
    key = {"Idempotency-Key": "build-42"}
    lost = call(lossy_sidecar, stack.namespace, "on-push", BODY, headers=key)
    assert lost.status_code == 503, lost.text
    assert lost.headers["Retry-After"] == "2"
    [created] = started_by(stack, "on-push")  # the write took effect nonetheless
    retried = call(stack.sidecar_url, stack.namespace, "on-push", BODY, headers=key)
    assert retried.status_code == 202, retried.text
    assert retried.json() | {"message": ""} == {
        "workflow": created["metadata"]["name"],
        "namespace": stack.namespace,
        "created": False,
        "message": "",
    }
    assert len(started_by(stack, "on-push")) == 1


def test_each_bad_call_gets_its_documented_status_and_starts_nothing(
    stack: OpsCoreStack,
) -> None:
    apply(
        stack,
        *manifests(),
        manifests("small", maxBodyBytes=200)[2],
        manifests("slow", rateLimit={"requestsPerMinute": 1, "burst": 1})[2],
    )
    big = json.dumps({**PUSH, "pad": "x" * 500}).encode()
    no_repo = json.dumps({"head_commit": {"id": "1"}}).encode()
    cases = {
        "wrong signature": (
            call(stack.sidecar_url, stack.namespace, "on-push", BODY, secret=b"guess"),
            401,
        ),
        "unknown trigger": (call(stack.sidecar_url, stack.namespace, "on-pusj", BODY), 404),
        "other namespace": (call(stack.sidecar_url, "default", "on-push", BODY), 404),
        "body too large": (call(stack.sidecar_url, stack.namespace, "small", big), 413),
        "not JSON": (call(stack.sidecar_url, stack.namespace, "on-push", b"{oops"), 422),
        "missing input": (call(stack.sidecar_url, stack.namespace, "on-push", no_repo), 422),
        "first within rate": (call(stack.sidecar_url, stack.namespace, "slow", BODY), 202),
        "over the rate": (call(stack.sidecar_url, stack.namespace, "slow", BODY), 429),
    }
    got = {what: answer.status_code for what, (answer, _) in cases.items()}
    assert got == {what: code for what, (_, code) in cases.items()}
    missing = cases["missing input"][0].json()["detail"]
    assert [e["loc"] for e in missing] == [["body", "repository", "full_name"]]
    assert "'repo'" in missing[0]["msg"]
    assert int(cases["over the rate"][0].headers["Retry-After"]) >= 1
    assert cases["wrong signature"][0].headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    assert started_by(stack, "on-push") == []
    assert started_by(stack, "small") == []
    assert len(started_by(stack, "slow")) == 1


def test_an_api_key_trigger_admits_only_a_key_scoped_to_it(
    stack: OpsCoreStack, tmp_path: Path
) -> None:
    """A sidecar with a keys file holding a key scoped to the trigger: that key starts a
    run; the stack's unscoped key is refused (403), no key or a wrong one is 401."""
    keys = tmp_path / "api-keys"
    keys.write_text(f"ci-key-0123456789 trigger:{stack.namespace}/by-key\n")
    port = free_port()
    process = stack.spawn_sidecar(
        "keyed-sidecar", port=port, env={"OPSCORE_API_KEYS_FILE": str(keys)}
    )
    try:
        apply(stack, *manifests(), manifests("by-key", auth={"apiKey": {}})[2])
        base = f"http://127.0.0.1:{port}"
        answers = {
            who: call(base, stack.namespace, "by-key", BODY, headers=headers).status_code
            for who, headers in {
                "no key": {},
                "wrong key": {"Authorization": "Bearer not-a-key"},
                "unscoped key": {"Authorization": f"Bearer {stack.options.api_key}"},
                "scoped key": {"Authorization": "Bearer ci-key-0123456789"},
            }.items()
        }
    finally:
        process.stop()
    assert answers == {"no key": 401, "wrong key": 401, "unscoped key": 403, "scoped key": 202}
    assert len(started_by(stack, "by-key")) == 1


def api_requests(stack: OpsCoreStack) -> dict[tuple[str, str], float]:
    """The sidecar's `opscore_kube_api_requests_total`, by (verb, code)."""
    text = httpx.get(f"{stack.sidecar_url}/metrics", trust_env=False, timeout=10).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "opscore_kube_api_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[(sample.labels["verb"], sample.labels["code"])] = sample.value
    return counts


def test_a_call_costs_one_api_write_and_reads_are_cached(stack: OpsCoreStack) -> None:
    apply(stack, *manifests())
    before = api_requests(stack)
    for key in ("a", "b", "c", "c"):
        answer = call(
            stack.sidecar_url, stack.namespace, "on-push", BODY, headers={"Idempotency-Key": key}
        )
        assert answer.status_code == 202, answer.text
    after = api_requests(stack)
    spent = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    # Three new runs and one repeat: 3 creates, 1 create answered 409; the trigger, its
    # Secret and its template read once each (cached), and the repeat's run read once.
    assert spent.get(("create", "201")) == 3, spent
    assert spent.get(("create", "409")) == 1, spent
    assert spent.get(("get", "200")) == 4, spent
