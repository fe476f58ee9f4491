"""The sidecar's OpenAPI document, and the generator of the checked-in `docs/openapi.json`.

`python -m opscore_sidecar.openapi > docs/openapi.json` (or `make openapi`) writes it;
`tests/unit/test_sidecar_openapi.py` fails when the checked-in file drifts from the app, so
the contract a reviewer reads is the one the app serves (at `/openapi.json`, rendered at
`/docs`).

FastAPI builds the document from the routes; `document` adds what it cannot see:
- the webhook's body schema (that route reads raw bytes, since the signature covers them);
- the `HTTPValidationError` body on every 422 (routes that describe their 422 in words lose
  FastAPI's own schema for it);
- the `X-Request-ID` header, which the middleware puts on every answer.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi
from pydantic import SecretStr

from opscore_sidecar.schemas import RegistrationEvent

if TYPE_CHECKING:
    from fastapi import FastAPI

_VALIDATION_ERROR_REF = {"$ref": "#/components/schemas/HTTPValidationError"}
_REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": (
            "The request's id (the client's X-Request-ID if it sent a usable one, else a new "
            "one); every log line about the request carries it."
        ),
        "schema": {"type": "string"},
    }
}


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once, then cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    event = RegistrationEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(event.pop("$defs", {}))
    schemas["RegistrationEvent"] = event
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for code, answer in operation.get("responses", {}).items():
                if code == "422" and "content" not in answer:
                    answer["content"] = {"application/json": {"schema": _VALIDATION_ERROR_REF}}
                answer["headers"] = {**answer.get("headers", {}), **_REQUEST_ID_HEADER}
    _ensure_validation_schemas(schemas)
    app.openapi_schema = doc
    return doc


def _ensure_validation_schemas(schemas: dict[str, Any]) -> None:
    """FastAPI's own `HTTPValidationError` / `ValidationError` definitions, in case no
    route made FastAPI add them itself."""
    from fastapi.openapi.utils import (
        validation_error_definition,
        validation_error_response_definition,
    )

    schemas.setdefault("ValidationError", validation_error_definition)
    schemas.setdefault("HTTPValidationError", validation_error_response_definition)


def render(app: FastAPI) -> str:
    """The document as the checked-in file holds it: stable key order, 2-space indent."""
    return json.dumps(document(app), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Print the document of an app built with placeholder settings (none of them show
    in the document; nothing connects to a cluster)."""
    from opscore_sidecar.app import create_app
    from opscore_sidecar.settings import SidecarSettings

    settings = SidecarSettings.model_construct(
        namespace="opscore-system", api_key=SecretStr("placeholder")
    )
    sys.stdout.write(render(create_app(settings)))


if __name__ == "__main__":
    main()
