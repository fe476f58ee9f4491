"""The trigger route's OpenAPI description: its request body and every answer, with
examples. Kept apart from the route so the contract reads in one place (and the route
file stays about behaviour). `tests/unit/sidecar/test_sidecar_negative.py` provokes each
documented code."""

from __future__ import annotations

from typing import Any

from opscore_sidecar.responses import BAD_GATEWAY, UNAVAILABLE, Responses
from opscore_sidecar.schemas import ErrorBody

_PUSH_EXAMPLE = {
    "ref": "refs/heads/main",
    "repository": {"full_name": "acme/shop"},
    "head_commit": {"id": "9f2c1e7", "message": "Fix the checkout total"},
}

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "Any JSON document (the signature covers its raw bytes). The trigger's "
        "`inputsFromBody` maps dotted paths in it to the template's inputs, e.g. "
        "`repo: repository.full_name`."
    ),
    "content": {
        "application/json": {
            "schema": {"description": "Any JSON value."},
            "examples": {"github-push": {"summary": "A GitHub push", "value": _PUSH_EXAMPLE}},
        }
    },
}


def _error(description: str, example: str, headers: dict[str, Any] | None = None) -> Any:
    answer: dict[str, Any] = {
        "model": ErrorBody,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


RESPONSES: Responses = {
    202: {
        "description": (
            "The Workflow exists: created now (`created: true`), or by an earlier call "
            "with the same Idempotency-Key / X-GitHub-Delivery (`created: false`)."
        )
    },
    401: _error(
        "`hmac`: missing or wrong X-Hub-Signature-256 (or the trigger's Secret is missing). "
        "`apiKey`: missing or unknown key.",
        "Invalid signature: X-Hub-Signature-256 does not match the body",
        {
            "WWW-Authenticate": {
                "description": "`HMAC-SHA256 realm=...` for hmac triggers, `Bearer` for apiKey.",
                "schema": {"type": "string"},
            }
        },
    ),
    403: _error(
        "`apiKey`: a valid key whose scope does not name `trigger:NAMESPACE/NAME`.",
        "This API key is not scoped to 'trigger:opscore-system/on-push'",
    ),
    404: _error(
        "No such WorkflowTrigger in the sidecar's namespace, or its template is gone.",
        "No WorkflowTrigger opscore-system/on-pusj (this sidecar serves namespace "
        "'opscore-system')",
    ),
    409: _error(
        "The idempotency key's Workflow name is taken by a Workflow this trigger did not start.",
        "Workflow on-push-4f9c2a7d1e0b3c58 exists and was not started by this trigger",
    ),
    413: _error(
        "Body larger than the trigger's maxBodyBytes (or OPSCORE_MAX_BODY_BYTES).",
        "Request body exceeds the trigger's maxBodyBytes (65536 bytes)",
    ),
    422: {
        "description": (
            "Not JSON, or a required input of the template is left unset: one error per "
            "missing input, `loc` is `body` and the body path the trigger maps to it."
        ),
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/HTTPValidationError"},
                "example": {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "repository", "full_name"],
                            "msg": "required input 'repo': nothing at body path "
                            "'repository.full_name'",
                            "input": None,
                        }
                    ]
                },
            }
        },
    },
    429: _error(
        "Over the trigger's rateLimit; nothing was started. Retry after Retry-After.",
        "Rate limit of WorkflowTrigger on-push exceeded (60/min); nothing was started",
        UNAVAILABLE[503]["headers"],
    ),
    **BAD_GATEWAY,
    **UNAVAILABLE,
}
