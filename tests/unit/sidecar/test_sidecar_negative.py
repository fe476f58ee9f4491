"""Every refusal the sidecar can answer, on every route that can answer it, in one table.

Each row sends one bad request through the ASGI app (FakeKube behind it) and checks the
status code, the headers a client acts on (`WWW-Authenticate`, `Retry-After`), that the
body is `{"detail": ...}` (a string, or FastAPI's list naming the field for 422), that the
answer carries a request id, that nothing was stored when nothing should be, and that the
API key never comes back in an answer. The last test checks the table covers every code
the routes document.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sidecar_fakes import (
    AGENT_ID,
    API_KEY,
    FakeKube,
    auth,
    client_for,
    report_body,
    settings,
    signed_headers,
    state_url,
)
from trigger_fakes import PUSH, TRIGGER_URL, trigger_and, trigger_name_taken, with_trigger
from trigger_fakes import signed as trigger_signed

from opscore_kube import Conflict, KubeApiError
from opscore_sidecar.app import create_app
from opscore_sidecar.openapi import document

pytestmark = pytest.mark.timeout(60)

NOTIFY = "/v1/opscore/internal/agent/notify"
WORKFLOW = f"/v1/opscore/agent/{AGENT_ID}/workflow"
SCOPED_KEY = "scoped-to-someone-else"
MAX_BODY = 2048

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Case:
    id: str
    code: int
    send: Send
    route: str  # "METHOD template", as OpenAPI names it
    setup: Callable[[FakeKube], None] = lambda kube: None
    overrides: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # header -> expected prefix
    field_named: str | None = None  # a 422 must name this field


def post(path: str, body: Any, headers: dict[str, str] | None = None) -> Send:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, json=body, headers=headers or {})

    return send


def post_raw(path: str, content: bytes, headers: dict[str, str]) -> Send:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, content=content, headers=headers)

    return send


def get_with_body(path: str, content: bytes) -> Send:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.request("GET", path, content=content, headers=auth())

    return send


def get(path: str, headers: dict[str, str] | None = None) -> Send:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(path, headers=headers or {})

    return send


def streamed(path: str, size: int) -> Send:
    """A chunked body (no Content-Length): the limit must hold while reading."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size // 512):
            yield b" " * 512

    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            path, content=chunks(), headers={**auth(), "Content-Type": "application/json"}
        )

    return send


def twice(first: Send) -> Send:
    """The second of two identical requests (the first spends the only token)."""

    async def send(client: httpx.AsyncClient) -> httpx.Response:
        await first(client)
        return await first(client)

    return send


def down(kube: FakeKube) -> None:
    kube.down = True


def rbac_refuses(kube: FakeKube) -> None:
    refusal = KubeApiError(403, "Forbidden", "agents is forbidden: User cannot create")
    for verb in ("get", "list", "create", "patch", "patch_status"):
        kube.fail_next[verb] = [refusal] * 3


def creates_conflict(kube: FakeKube) -> None:
    """Every create of the Agent loses a race to a creator whose Agent then vanishes."""
    kube.fail_next["create"] = [Conflict(409, "AlreadyExists", "agents already exists")] * 3


def has_agent(kube: FakeKube) -> None:
    kube.put({"metadata": {"name": AGENT_ID}, "spec": {"agentId": AGENT_ID}})


def webhook_body(**details: Any) -> bytes:
    agent = {
        "agentId": AGENT_ID,
        "agentName": "summariser",
        "version": "1",
        "capabilities": [],
        "contactEndpoint": "http://summariser:9000/",
        **details,
    }
    return json.dumps({"event_type": "REGISTER", "agent_details": agent}).encode()


def signed(body: bytes) -> Send:
    async def send(client: httpx.AsyncClient) -> httpx.Response:
        headers = signed_headers(body, timestamp=int(time.time()))
        return await client.post(NOTIFY, content=body, headers=headers)

    return send


POST_STATE = "POST /v1/opscore/agent/{agentId}/state"
GET_STATE = "GET /v1/opscore/agent/{agentId}/state"
POST_WORKFLOW = "POST /v1/opscore/agent/{agentId}/workflow"
POST_NOTIFY = f"POST {NOTIFY}"
GET_READYZ = "GET /readyz"
BEARER = {"WWW-Authenticate": "Bearer"}
RETRY = {"Retry-After": ""}
ONE_TOKEN = {"rate_limit_per_agent": 0.001, "rate_limit_per_agent_burst": 1}
FUTURE = "2999-01-01T00:00:00+00:00"
LONG_ID = "a" * 254

CASES = [
    # -- 400 ------------------------------------------------------------------------------
    Case(
        "state-agent-id-mismatch", 400, post(state_url(), report_body("other"), auth()), POST_STATE
    ),
    Case(
        "state-not-utf8",
        400,
        post_raw(state_url(), b'{"state": "\xff"}', {**auth(), "Content-Type": "application/json"}),
        POST_STATE,
    ),
    Case(
        "workflow-not-utf8",
        400,
        post_raw(WORKFLOW, b'{"state": "\xff"}', {**auth(), "Content-Type": "application/json"}),
        POST_WORKFLOW,
    ),
    # -- 401 ------------------------------------------------------------------------------
    Case("state-no-key", 401, post(state_url(), report_body()), POST_STATE, headers=BEARER),
    Case(
        "state-unknown-key",
        401,
        post(state_url(), report_body(), auth("not-a-key")),
        POST_STATE,
        headers=BEARER,
    ),
    Case(
        "state-basic-scheme",
        401,
        post(state_url(), report_body(), {"Authorization": "Basic dXNlcjpwYXNz"}),
        POST_STATE,
        headers=BEARER,
    ),
    Case("read-no-key", 401, get(state_url()), GET_STATE, headers=BEARER),
    Case(
        "workflow-no-key",
        401,
        post(WORKFLOW, {"workflowDefinitionId": "x"}),
        POST_WORKFLOW,
        headers=BEARER,
    ),
    Case(
        "webhook-bad-signature",
        401,
        post_raw(
            NOTIFY,
            webhook_body(),
            {"X-AgentKit-Timestamp": str(int(time.time())), "X-AgentKit-Signature": "00"},
        ),
        POST_NOTIFY,
        headers={"WWW-Authenticate": "HMAC-SHA256"},
    ),
    Case(
        "webhook-unsigned",
        401,
        post_raw(NOTIFY, webhook_body(), {}),
        POST_NOTIFY,
        headers={"WWW-Authenticate": "HMAC-SHA256"},
    ),
    # -- 403 ------------------------------------------------------------------------------
    Case(
        "state-scoped-key",
        403,
        post(state_url(), report_body(), auth(SCOPED_KEY)),
        POST_STATE,
    ),
    Case("read-scoped-key", 403, get(state_url(), auth(SCOPED_KEY)), GET_STATE),
    Case(
        "workflow-scoped-key",
        403,
        post(WORKFLOW, {"workflowDefinitionId": "x"}, auth(SCOPED_KEY)),
        POST_WORKFLOW,
    ),
    # -- 404 ------------------------------------------------------------------------------
    Case("read-unknown-agent", 404, get(state_url(), auth()), GET_STATE),
    Case("read-agent-without-reports", 404, get(state_url(), auth()), GET_STATE, has_agent),
    Case(
        "workflow-unknown-agent",
        404,
        post(WORKFLOW, {"workflowDefinitionId": "x"}, auth()),
        POST_WORKFLOW,
    ),
    Case(
        "workflow-unknown-definition",
        404,
        post(WORKFLOW, {"workflowDefinitionId": "nowhere"}, auth()),
        POST_WORKFLOW,
        has_agent,
    ),
    # -- 413 ------------------------------------------------------------------------------
    Case(
        "state-declared-too-large",
        413,
        post_raw(
            state_url(),
            b" " * (MAX_BODY + 1),
            {**auth(), "Content-Type": "application/json"},
        ),
        POST_STATE,
    ),
    Case("state-streamed-too-large", 413, streamed(state_url(), 4 * MAX_BODY), POST_STATE),
    Case("read-too-large", 413, get_with_body(state_url(), b" " * (MAX_BODY + 1)), GET_STATE),
    Case("workflow-streamed-too-large", 413, streamed(WORKFLOW, 4 * MAX_BODY), POST_WORKFLOW),
    Case(
        "webhook-too-large",
        413,
        post_raw(NOTIFY, b" " * (MAX_BODY + 1), {"Content-Type": "application/json"}),
        POST_NOTIFY,
    ),
    # -- 422 ------------------------------------------------------------------------------
    Case(
        "state-missing-state",
        422,
        post(state_url(), {k: v for k, v in report_body().items() if k != "state"}, auth()),
        POST_STATE,
        field_named="state",
    ),
    Case(
        "state-bad-timestamp",
        422,
        post(state_url(), report_body(timestamp="yesterday"), auth()),
        POST_STATE,
        field_named="timestamp",
    ),
    Case(
        "state-future-timestamp",
        422,
        post(state_url(), report_body(timestamp=FUTURE), auth()),
        POST_STATE,
        field_named="timestamp",
    ),
    *(
        Case(
            f"state-bad-usage-{name}",
            422,
            post(state_url(), report_body(details={"usage": usage}), auth()),
            POST_STATE,
            field_named="details",
        )
        for name, usage in (
            ("negative-tokens", {"input_tokens": -1}),
            ("inconsistent-total", {"input_tokens": 1, "output_tokens": 2, "total_tokens": 4}),
            ("cost-without-currency", {"cost": 0.5}),
            ("bad-currency", {"cost": 0.5, "currency": "dollars"}),
            ("not-an-object", "lots"),
        )
    ),
    Case(
        "state-details-not-an-object",
        422,
        post(state_url(), {**report_body(), "details": ["a"]}, auth()),
        POST_STATE,
        field_named="details",
    ),
    Case(
        "state-not-json",
        422,
        post_raw(state_url(), b"{not json", {**auth(), "Content-Type": "application/json"}),
        POST_STATE,
    ),
    Case(
        "state-body-is-a-list",
        422,
        post(state_url(), [report_body()], auth()),
        POST_STATE,
    ),
    Case(
        "state-path-id-too-long",
        422,
        post(state_url(LONG_ID), report_body(LONG_ID), auth()),
        POST_STATE,
        field_named="agentId",
    ),
    Case(
        "read-path-id-too-long",
        422,
        get(state_url(LONG_ID), auth()),
        GET_STATE,
        field_named="agentId",
    ),
    Case(
        "workflow-no-definition",
        422,
        post(WORKFLOW, {"initialPayload": {}}, auth()),
        POST_WORKFLOW,
        has_agent,
    ),
    Case(
        "workflow-invalid-inline-definition",
        422,
        post(WORKFLOW, {"workflowDefinition": {"id": "x", "tasks": "no"}}, auth()),
        POST_WORKFLOW,
        has_agent,
        field_named="workflowDefinition",
    ),
    Case(
        "webhook-unknown-event",
        422,
        signed(b'{"event_type":"DEREGISTER","agent_details":{}}'),
        POST_NOTIFY,
        field_named="event_type",
    ),
    # -- 429 ------------------------------------------------------------------------------
    Case(
        "state-rate-limited",
        429,
        twice(post(state_url(), report_body(), auth())),
        POST_STATE,
        overrides=ONE_TOKEN,
        headers=RETRY,
    ),
    Case(
        "read-rate-limited",
        429,
        twice(get(state_url(), auth())),
        GET_STATE,
        overrides=ONE_TOKEN,
        headers=RETRY,
    ),
    Case(
        "workflow-rate-limited",
        429,
        twice(post(WORKFLOW, {"workflowDefinitionId": "x"}, auth())),
        POST_WORKFLOW,
        overrides=ONE_TOKEN,
        headers=RETRY,
    ),
    # -- 502 ------------------------------------------------------------------------------
    Case(
        "state-rbac-refusal",
        502,
        post(state_url(), report_body(), auth()),
        POST_STATE,
        rbac_refuses,
    ),
    Case("read-rbac-refusal", 502, get(state_url(), auth()), GET_STATE, rbac_refuses),
    Case(
        "workflow-rbac-refusal",
        502,
        post(WORKFLOW, {"workflowDefinitionId": "x"}, auth()),
        POST_WORKFLOW,
        rbac_refuses,
    ),
    Case("webhook-rbac-refusal", 502, signed(webhook_body()), POST_NOTIFY, rbac_refuses),
    # -- 503 ------------------------------------------------------------------------------
    Case(
        "state-api-down",
        503,
        post(state_url(), report_body(), auth()),
        POST_STATE,
        down,
        headers=RETRY,
    ),
    Case("read-api-down", 503, get(state_url(), auth()), GET_STATE, down, headers=RETRY),
    Case(
        "workflow-api-down",
        503,
        post(WORKFLOW, {"workflowDefinitionId": "x"}, auth()),
        POST_WORKFLOW,
        down,
        headers=RETRY,
    ),
    Case("webhook-api-down", 503, signed(webhook_body()), POST_NOTIFY, down, headers=RETRY),
    Case(
        "state-create-contended",
        503,
        post(state_url(), report_body(), auth()),
        POST_STATE,
        creates_conflict,
        headers=RETRY,
    ),
    Case(
        "webhook-create-contended",
        503,
        signed(webhook_body()),
        POST_NOTIFY,
        creates_conflict,
        headers=RETRY,
    ),
    Case(
        "webhook-disabled",
        503,
        signed(webhook_body()),
        POST_NOTIFY,
        overrides={"webhook_secret": None},
    ),
    Case("readyz-api-down", 503, get("/readyz"), GET_READYZ, down),
]


# -- the webhook trigger route (behaviour in test_sidecar_triggers.py) ---------------------
POST_TRIGGER = "POST /v1/opscore/triggers/{namespace}/{name}"
PUSH_BODY = json.dumps(PUSH).encode()


def fire(body: bytes = PUSH_BODY, headers: dict[str, str] | None = None) -> Send:
    return post_raw(TRIGGER_URL, body, headers or trigger_signed(body))


UNREADABLE = b'{"ref": '
CASES += [
    Case(
        "trigger-wrong-signature",
        401,
        fire(headers=trigger_signed(PUSH_BODY, secret=b"guess")),
        POST_TRIGGER,
        with_trigger(),
        headers={"WWW-Authenticate": "HMAC-SHA256"},
    ),
    Case(
        "trigger-unscoped-key",
        403,
        fire(headers=auth()),
        POST_TRIGGER,
        with_trigger(auth={"apiKey": {}}),
    ),
    Case("trigger-unknown", 404, fire(), POST_TRIGGER),
    Case(
        "trigger-name-taken",
        409,
        fire(headers=trigger_signed(PUSH_BODY, headers={"Idempotency-Key": "k"})),
        POST_TRIGGER,
        trigger_name_taken,
    ),
    Case("trigger-too-large", 413, fire(), POST_TRIGGER, with_trigger(maxBodyBytes=16)),
    Case(
        "trigger-missing-input",
        422,
        fire(b"{}", trigger_signed(b"{}")),
        POST_TRIGGER,
        with_trigger(),
        field_named="repository",
    ),
    Case(
        "trigger-not-json",
        422,
        fire(UNREADABLE, trigger_signed(UNREADABLE)),
        POST_TRIGGER,
        with_trigger(),
        field_named="body",
    ),
    Case(
        "trigger-over-rate",
        429,
        twice(fire()),
        POST_TRIGGER,
        with_trigger(rateLimit={"requestsPerMinute": 1, "burst": 1}),
        headers=RETRY,
    ),
    Case("trigger-rbac-refusal", 502, fire(), POST_TRIGGER, rbac_refuses),
    Case("trigger-api-down", 503, fire(), POST_TRIGGER, trigger_and(down), headers=RETRY),
]


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_text(f"{API_KEY}\n{SCOPED_KEY} someone-else\n")
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_each_refusal_has_its_code_headers_and_body(case: Case, keys_file: Path) -> None:
    kube = FakeKube()
    case.setup(kube)
    overrides = {"api_keys_file": keys_file, "max_body_bytes": MAX_BODY, **case.overrides}
    stored_before = _reports(kube)
    async with client_for(kube, **overrides) as (client, _):
        resp = await case.send(client)
    assert resp.status_code == case.code, resp.text
    for name, prefix in case.headers.items():
        assert resp.headers.get(name, "").startswith(prefix), f"{name}: {resp.headers}"
        if name == "Retry-After":
            assert int(resp.headers[name]) >= 1
    assert resp.headers.get("x-request-id")
    body = resp.json()
    assert isinstance(body.get("detail"), str | list), body
    if case.field_named is not None:
        named = [str(part) for error in body["detail"] for part in error["loc"]]
        assert case.field_named in named, body
    assert API_KEY not in resp.text
    assert SCOPED_KEY not in resp.text
    if case.code != 429:  # the rate-limit rows store their first, admitted request
        assert _reports(kube) == stored_before, "a refused request stored nothing"


def _reports(kube: FakeKube) -> list[Any]:
    return [a.get("status", {}).get("reports") for a in kube.agents()]


async def test_requests_before_startup_are_503_with_retry_after() -> None:
    app = create_app(settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        resp = await client.post(state_url(), json=report_body(), headers=auth())
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"


async def test_unknown_paths_and_methods_are_404_and_405() -> None:
    async with client_for(FakeKube()) as (client, _):
        assert (await client.get("/v1/opscore/agents")).status_code == 404
        assert (await client.delete(state_url(), headers=auth())).status_code == 405


def test_the_table_covers_every_error_code_each_route_documents() -> None:
    """A code documented in OpenAPI but never provoked here would be an untested promise.
    (The dashboard's routes are specified by its own tests.)"""
    paths = document(create_app(settings()))["paths"]
    documented = {
        (f"{method.upper()} {path}", int(code))
        for path, operations in paths.items()
        if not path.startswith("/dashboard")
        for method, operation in operations.items()
        for code in operation["responses"]
        if int(code) >= 400
    }
    covered = {(case.route, case.code) for case in CASES}
    assert documented - covered == set()
