"""Property-based fuzzing of the sidecar from its own OpenAPI document (schemathesis).

Every operation in the document gets generated requests, valid and invalid, through the
ASGI app with FakeKube behind it. Whatever comes in, the answer must be no 5xx, a status
code the operation documents, the documented content type, headers and body schema. So
the document is checked against the app as much as the app against bad input.

The agent routes get a valid key (else every request would stop at 401, which the negative
suite covers). The webhook's body is signed over its exact bytes, which schemathesis cannot
do while it serialises, so its generated bodies are signed and sent by the second test.
Budget: well under 60 s on two cores (`MAX_EXAMPLES` per operation).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sidecar_fakes import FakeKube, auth, settings, signed_headers

from opscore_sidecar.app import create_app
from opscore_sidecar.webhook import NOTIFY_PATH

pytestmark = pytest.mark.timeout(120)

MAX_EXAMPLES = 40
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The dashboard's JSON routes are fuzzed for server errors only: their own tests specify
# their answers, and its page routes are not in the document.
DASHBOARD_CHECKS: list[CheckFunction] = [not_a_server_error]

APP = create_app(settings(), FakeKube())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path=NOTIFY_PATH)

FUZZ_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    case: schemathesis.Case[Any],
) -> None:
    dashboard = case.path.startswith("/dashboard")
    case.call_and_validate(headers=auth(), checks=DASHBOARD_CHECKS if dashboard else CHECKS)


webhook = schemathesis.openapi.from_asgi("/openapi.json", APP).include(path=NOTIFY_PATH)
WEBHOOK_BODIES = webhook[NOTIFY_PATH]["POST"].as_strategy()
# An app of its own: each example runs on a fresh event loop (`asyncio.run`).
WEBHOOK_APP = create_app(settings(), FakeKube())


@given(case=WEBHOOK_BODIES, raw=st.booleans())
@FUZZ_SETTINGS
def test_signed_webhook_bodies_never_get_a_server_error(case: Any, raw: bool) -> None:
    """Generated registration bodies, signed like AgentKit does: accepted (200) or refused
    as invalid (422), never 5xx. `raw` sends the body bytes schemathesis generated for
    non-JSON media as-is."""
    body = case.body
    content = body if raw and isinstance(body, bytes) else json.dumps(body).encode()
    headers = signed_headers(content, timestamp=int(time.time()))
    resp = asyncio.run(_post_webhook(content, headers))
    assert resp.status_code in (200, 422), resp.text


async def _post_webhook(content: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=WEBHOOK_APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        return await client.post(NOTIFY_PATH, content=content, headers=headers)
