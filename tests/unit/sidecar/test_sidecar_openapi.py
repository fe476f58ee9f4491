"""The OpenAPI document: served, rendered at /docs, complete, and the checked-in copy in
`docs/openapi.json` is exactly what the app serves (regenerate with `make openapi`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sidecar_fakes import FakeKube, client_for, settings

from opscore_sidecar.app import create_app
from opscore_sidecar.openapi import document, render

pytestmark = pytest.mark.timeout(60)

CHECKED_IN = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
MODELS_WITH_EXAMPLES = (
    "StateReport",
    "Accepted",
    "AgentStateView",
    "ErrorBody",
    "RegistrationEvent",
    "AgentDetails",
    "WebhookAccepted",
    "WorkflowTrigger",
    "WorkflowStarted",
    "Readiness",
    "NotReady",
)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document(create_app(settings()))


def test_the_checked_in_document_is_what_the_app_serves(doc: dict[str, Any]) -> None:
    assert CHECKED_IN.exists(), "run `make openapi`"
    assert json.loads(CHECKED_IN.read_text(encoding="utf-8")) == doc, (
        "docs/openapi.json is stale: run `make openapi` and commit the result"
    )


def test_the_generator_prints_the_checked_in_file_byte_for_byte() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "opscore_sidecar.openapi"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert printed == CHECKED_IN.read_text(encoding="utf-8")


def test_render_is_stable(doc: dict[str, Any]) -> None:
    app = create_app(settings())
    assert render(app) == render(app)
    assert json.loads(render(app)) == doc


async def test_the_document_is_served_and_rendered_at_docs() -> None:
    async with client_for(FakeKube()) as (client, _):
        served = (await client.get("/openapi.json")).json()
        page = await client.get("/docs")
    assert served["info"]["title"] == "Ops-Core sidecar"
    assert page.status_code == 200
    assert "/openapi.json" in page.text
    assert "swagger" in page.text.lower()


def test_every_model_carries_an_example(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    missing = [name for name in MODELS_WITH_EXAMPLES if not schemas[name].get("examples")]
    assert missing == []


def test_every_answer_documents_the_request_id_header(doc: dict[str, Any]) -> None:
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                assert "X-Request-ID" in answer.get("headers", {}), (method, path, code)


def test_every_422_has_the_validation_error_body(doc: dict[str, Any]) -> None:
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            if answer is not None:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/HTTPValidationError"}, (
                    method,
                    path,
                )


def test_refusals_a_client_acts_on_document_their_headers(doc: dict[str, Any]) -> None:
    state = doc["paths"]["/v1/opscore/agent/{agentId}/state"]["post"]["responses"]
    assert "WWW-Authenticate" in state["401"]["headers"]
    assert "Retry-After" in state["429"]["headers"]
    assert "Retry-After" in state["503"]["headers"]
    assert "OPSCORE_RATE_LIMIT_PER_AGENT" in state["429"]["description"]


def test_the_agent_routes_require_the_bearer_key(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["OpsCoreApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["OpsCoreApiKey"]["description"],
    }
    for path, operations in doc["paths"].items():
        if path.startswith("/v1/opscore/agent/"):
            for operation in operations.values():
                assert operation["security"] == [{"OpsCoreApiKey": []}], path


def test_the_webhook_body_schema_is_included(doc: dict[str, Any]) -> None:
    notify = doc["paths"]["/v1/opscore/internal/agent/notify"]["post"]
    schema = notify["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/RegistrationEvent"}
    assert "AgentDetails" in doc["components"]["schemas"]
