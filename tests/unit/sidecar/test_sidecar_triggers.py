"""The trigger endpoint (`POST /v1/opscore/triggers/{namespace}/{name}`) through the ASGI
app with FakeKube behind it: what it creates, what a repeat gets, what each refusal says,
and what it reads. Each status code's headers and body shape are also in the negative
table (test_sidecar_negative); the real API server and HTTP are in
tests/integration/test_triggers.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sidecar_fakes import NAMESPACE, FakeKube, auth, client_for
from trigger_fakes import PUSH, TRIGGER, TRIGGER_URL, add_trigger, signed

from opscore_kube import WORKFLOW_TRIGGERS, WORKFLOWS
from opscore_logic.trigger import run_name
from opscore_logic.trigger_model import TriggerRateLimit
from opscore_sidecar.trigger_desk import TriggerDesk

BODY = json.dumps(PUSH).encode()


def workflows(kube: FakeKube) -> list[dict[str, Any]]:
    return [o for (p, _, _), o in kube.objects.items() if p == WORKFLOWS.plural]


async def fire(
    kube: FakeKube, body: bytes = BODY, headers: dict[str, str] | None = None, **overrides: Any
) -> httpx.Response:
    async with client_for(kube, **overrides) as (client, _):
        return await client.post(TRIGGER_URL, content=body, headers=headers or signed(body))


async def test_a_signed_call_creates_one_workflow_of_the_template_with_the_mapped_inputs() -> None:
    kube = FakeKube()
    add_trigger(kube, inputs={"env": "ci"})
    resp = await fire(kube)
    assert resp.status_code == 202, resp.text
    [workflow] = workflows(kube)
    assert resp.json()["workflow"] == workflow["metadata"]["name"]
    assert resp.json()["created"] is True
    assert workflow["spec"] == {
        "templateRef": {"name": "build"},
        "inputs": {"env": "ci", "repo": "acme/shop", "sha": "9f2c1e7"},
    }
    assert workflow["metadata"]["annotations"]["opscore.opspawn.io/trigger"] == TRIGGER
    assert workflow["metadata"]["labels"]["opscore.opspawn.io/started-by"] == "trigger"


async def test_runs_get_the_triggers_ttl_after_finished() -> None:
    kube = FakeKube()
    add_trigger(kube, ttlSecondsAfterFinished=3600)
    assert (await fire(kube)).status_code == 202
    [workflow] = workflows(kube)
    assert workflow["spec"]["ttlSecondsAfterFinished"] == 3600


async def test_calls_without_a_key_each_start_their_own_run() -> None:
    kube = FakeKube()
    add_trigger(kube)
    async with client_for(kube) as (client, _):
        first = await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY))
        second = await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY))
    assert first.json()["workflow"] != second.json()["workflow"]
    assert len(workflows(kube)) == 2


async def test_a_repeated_idempotency_key_returns_the_first_workflow_and_creates_none() -> None:
    kube = FakeKube()
    trigger = add_trigger(kube)
    headers = signed(BODY, headers={"Idempotency-Key": "delivery-1"})
    async with client_for(kube) as (client, _):
        first = await client.post(TRIGGER_URL, content=BODY, headers=headers)
        again = await client.post(TRIGGER_URL, content=BODY, headers=headers)
    assert first.status_code == again.status_code == 202
    expected = run_name(TRIGGER, trigger["metadata"]["uid"], "delivery-1")
    assert first.json()["workflow"] == again.json()["workflow"] == expected
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert len(workflows(kube)) == 1


async def test_two_deliveries_of_one_key_at_once_create_one_workflow() -> None:
    kube = FakeKube()
    add_trigger(kube)
    headers = signed(BODY, headers={"Idempotency-Key": "at-once"})
    async with client_for(kube) as (client, _):
        answers = await asyncio.gather(
            *(client.post(TRIGGER_URL, content=BODY, headers=headers) for _ in range(2))
        )
    assert sorted(a.json()["created"] for a in answers) == [False, True]
    assert len({a.json()["workflow"] for a in answers}) == 1
    assert len(workflows(kube)) == 1


async def test_githubs_delivery_id_is_the_key_when_no_idempotency_key_is_sent() -> None:
    kube = FakeKube()
    add_trigger(kube)
    headers = signed(BODY, headers={"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
    async with client_for(kube) as (client, _):
        first = await client.post(TRIGGER_URL, content=BODY, headers=headers)
        again = await client.post(TRIGGER_URL, content=BODY, headers=headers)
    assert first.json()["workflow"] == again.json()["workflow"]
    assert len(workflows(kube)) == 1


async def test_a_workflow_of_that_name_not_started_by_the_trigger_is_a_409() -> None:
    kube = FakeKube()
    trigger = add_trigger(kube)
    taken = run_name(TRIGGER, trigger["metadata"]["uid"], "k")
    kube.put({"metadata": {"name": taken}, "spec": {"steps": []}}, plural=WORKFLOWS.plural)
    resp = await fire(kube, headers=signed(BODY, headers={"Idempotency-Key": "k"}))
    assert resp.status_code == 409
    assert "not started by this trigger" in resp.json()["detail"]


async def test_a_wrong_signature_is_401_and_creates_nothing() -> None:
    kube = FakeKube()
    add_trigger(kube)
    resp = await fire(kube, headers=signed(BODY, secret=b"guess"))
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    assert "does not match" in resp.json()["detail"]
    assert workflows(kube) == []


async def test_a_trigger_whose_secret_is_missing_refuses_every_call() -> None:
    kube = FakeKube()
    add_trigger(kube, auth={"hmac": {"secretRef": {"name": "ci-secret", "key": "other"}}})
    resp = await fire(kube)
    assert resp.status_code == 401
    assert "secret is not available" in resp.json()["detail"]


async def test_an_unknown_trigger_or_another_namespace_is_404() -> None:
    kube = FakeKube()
    add_trigger(kube)
    async with client_for(kube) as (client, _):
        unknown = await client.post(TRIGGER_URL + "x", content=BODY, headers=signed(BODY))
        elsewhere = await client.post(
            f"/v1/opscore/triggers/other/{TRIGGER}", content=BODY, headers=signed(BODY)
        )
    assert unknown.status_code == elsewhere.status_code == 404
    assert f"this sidecar serves namespace {NAMESPACE!r}" in elsewhere.json()["detail"]


async def test_a_missing_template_is_404_naming_it() -> None:
    kube = FakeKube()
    add_trigger(kube, templateRef={"name": "gone"})
    resp = await fire(kube)
    assert resp.status_code == 404
    assert "'gone'" in resp.json()["detail"]


async def test_a_body_over_the_triggers_limit_is_413_declared_or_streamed() -> None:
    kube = FakeKube()
    add_trigger(kube, maxBodyBytes=100)
    big = json.dumps({**PUSH, "pad": "x" * 200}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 50):
            yield big[start : start + 50]

    async with client_for(kube) as (client, _):
        declared = await client.post(TRIGGER_URL, content=big, headers=signed(big))
        streamed = await client.post(TRIGGER_URL, content=chunks(), headers=signed(big))
    assert declared.status_code == streamed.status_code == 413
    assert "maxBodyBytes (100 bytes)" in streamed.json()["detail"]
    assert workflows(kube) == []


async def test_a_body_leaving_required_inputs_unset_is_422_naming_each() -> None:
    kube = FakeKube()
    add_trigger(kube)
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    resp = await fire(kube, body=body, headers=signed(body))
    assert resp.status_code == 422
    errors = resp.json()["detail"]
    assert [e["loc"] for e in errors] == [
        ["body", "repository", "full_name"],
        ["body", "head_commit", "id"],
    ]
    assert "'repo'" in errors[0]["msg"]
    assert "'sha'" in errors[1]["msg"]
    assert workflows(kube) == []


@pytest.mark.parametrize("body", [b"{not json", b'{"n": NaN}', b"Infinity", b"\xff\xfe{"])
async def test_a_signed_body_that_is_not_json_is_422(body: bytes) -> None:
    kube = FakeKube()
    add_trigger(kube)
    resp = await fire(kube, body=body, headers=signed(body))
    assert resp.status_code == 422
    assert "not JSON" in resp.json()["detail"][0]["msg"]


async def test_over_the_rate_a_call_is_429_and_a_bad_signature_spends_no_token() -> None:
    kube = FakeKube()
    add_trigger(kube, rateLimit={"requestsPerMinute": 1, "burst": 1})
    async with client_for(kube) as (client, _):
        forged = await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY, secret=b"x"))
        admitted = await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY))
        refused = await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY))
    assert (forged.status_code, admitted.status_code, refused.status_code) == (401, 202, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(workflows(kube)) == 1


async def test_an_unreachable_api_server_is_503_with_retry_after() -> None:
    kube = FakeKube()
    add_trigger(kube)
    kube.down = True
    resp = await fire(kube)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"


async def test_an_api_key_trigger_admits_only_keys_scoped_to_it(tmp_path: Path) -> None:
    kube = FakeKube()
    add_trigger(kube, auth={"apiKey": {}})
    keys = tmp_path / "keys"
    keys.write_text(f"scoped-key trigger:{NAMESPACE}/{TRIGGER}\nagent-key some-agent\n")
    async with client_for(kube, api_keys_file=keys) as (client, _):
        answers = [
            await client.post(TRIGGER_URL, content=BODY, headers=headers)
            for headers in (
                {},
                auth("no-such-key"),
                auth(),  # the unscoped OPSCORE_API_KEY
                auth("agent-key"),
                auth("scoped-key"),
            )
        ]
    assert [a.status_code for a in answers] == [401, 401, 403, 403, 202]
    assert answers[0].headers["WWW-Authenticate"] == "Bearer"
    assert len(workflows(kube)) == 1


async def test_a_call_reads_the_trigger_secret_and_template_once_per_cache_period() -> None:
    kube = FakeKube()
    add_trigger(kube)
    async with client_for(kube) as (client, _):
        for _ in range(3):
            assert (
                await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY))
            ).status_code == 202
    assert kube.count("get") == 3  # trigger, Secret, template: once each
    assert kube.count("create") == 3


async def test_with_no_cache_every_call_reads_again() -> None:
    kube = FakeKube()
    add_trigger(kube)
    async with client_for(kube, trigger_cache_seconds=0) as (client, _):
        for _ in range(2):
            await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY))
    assert kube.count("get") == 6


async def test_cached_reads_expire_after_the_ttl() -> None:
    kube = FakeKube()
    add_trigger(kube)
    now = [0.0]
    desk = TriggerDesk(kube, ttl=5.0, clock=lambda: now[0])
    await desk.read(WORKFLOW_TRIGGERS, NAMESPACE, "absent")
    await desk.read(WORKFLOW_TRIGGERS, NAMESPACE, "absent")
    now[0] = 5.1
    await desk.read(WORKFLOW_TRIGGERS, NAMESPACE, "absent")
    assert kube.count("get") == 2


def test_the_bucket_admits_burst_then_refills_at_the_per_minute_rate() -> None:
    now = [0.0]
    desk = TriggerDesk(FakeKube(), ttl=5.0, clock=lambda: now[0])
    limit = TriggerRateLimit(requests_per_minute=6, burst=2)
    assert desk.admit("uid", limit) is None
    assert desk.admit("uid", limit) is None
    wait = desk.admit("uid", limit)
    assert wait is not None
    assert abs(wait - 10.0) < 1e-6  # 6 per minute: one token every 10 s
    now[0] = 10.0
    assert desk.admit("uid", limit) is None


def test_a_changed_limit_starts_a_full_bucket() -> None:
    desk = TriggerDesk(FakeKube(), ttl=5.0, clock=lambda: 0.0)
    desk.admit("uid", TriggerRateLimit(requests_per_minute=1, burst=1))
    assert desk.admit("uid", TriggerRateLimit(requests_per_minute=1, burst=1)) is not None
    assert desk.admit("uid", TriggerRateLimit(requests_per_minute=2, burst=1)) is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
PUSH_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "repository": st.dictionaries(st.sampled_from(["full_name", "x"]), JSON_VALUES),
        "head_commit": st.dictionaries(st.sampled_from(["id", "y"]), JSON_VALUES),
    },
)


@given(body=JSON_VALUES | PUSH_LIKE)
@hypothesis.settings(max_examples=60, deadline=None, database=None, derandomize=True)
def test_any_signed_json_body_is_started_or_refused_422_never_a_server_error(body: Any) -> None:
    content = json.dumps(body).encode()  # NaN and Infinity too, which must get 422

    async def call() -> httpx.Response:
        kube = FakeKube()
        add_trigger(kube)
        return await fire(kube, body=content, headers=signed(content))

    resp = asyncio.run(call())
    assert resp.status_code in (202, 422), resp.text


async def test_calls_are_counted_by_answer_in_metrics() -> None:
    kube = FakeKube()
    add_trigger(kube)
    headers = signed(BODY, headers={"Idempotency-Key": "counted"})
    async with client_for(kube) as (client, _):
        for _ in range(2):
            await client.post(TRIGGER_URL, content=BODY, headers=headers)
        await client.post(TRIGGER_URL, content=BODY, headers=signed(BODY, secret=b"x"))
        metrics = (await client.get("/metrics")).text
    for result in ("created", "repeated", "401"):
        assert f'opscore_sidecar_trigger_calls_total{{result="{result}"}}' in metrics
