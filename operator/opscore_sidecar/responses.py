"""The error answers the routes document in OpenAPI, with their headers, in one place.

Why here: several routes share each answer (every agent route can say 401, 403, 429, 502,
503), and the checked-in `docs/openapi.json` is the reviewable contract, so each one is
described once, with the headers a client acts on (`WWW-Authenticate`, `Retry-After`).
`tests/unit/test_sidecar_fuzz.py` checks the app never answers a code its route does not
document here.
"""

from __future__ import annotations

from typing import Any

from opscore_sidecar.schemas import ErrorBody

Responses = dict[int | str, dict[str, Any]]

# The `Retry-After` of every 503 (API server unreachable, sidecar still starting): long
# enough not to invite a spin, short enough that a report is not late for its heartbeat.
RETRY_AFTER_SECONDS = 2

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "`Bearer`: the scheme the API key is expected in.",
        "schema": {"type": "string"},
    }
}

UNDECODABLE: Responses = {
    400: {
        "model": ErrorBody,
        "description": "The body is not UTF-8, so not JSON (answered before the key is checked).",
    }
}
UNAUTHORIZED: Responses = {
    401: {
        "model": ErrorBody,
        "description": "Missing or unknown API key.",
        "headers": _WWW_AUTHENTICATE,
    }
}
FORBIDDEN: Responses = {
    403: {"model": ErrorBody, "description": "The key is scoped to other agents."}
}
TOO_LARGE: Responses = {
    413: {"model": ErrorBody, "description": "Body larger than OPSCORE_MAX_BODY_BYTES."}
}
RATE_LIMITED: Responses = {
    429: {
        "model": ErrorBody,
        "description": (
            "Over the key's or the agent's rate limit (OPSCORE_RATE_LIMIT_PER_KEY, "
            "OPSCORE_RATE_LIMIT_PER_AGENT); nothing was stored. Retry after Retry-After."
        ),
        "headers": _RETRY_AFTER,
    }
}
BAD_GATEWAY: Responses = {
    502: {
        "model": ErrorBody,
        "description": "The Kubernetes API server refused the request (e.g. RBAC).",
    }
}
UNAVAILABLE: Responses = {
    503: {
        "model": ErrorBody,
        "description": (
            "The Kubernetes API server is unreachable, or the sidecar is still starting; "
            "nothing was stored. Retry after Retry-After."
        ),
        "headers": _RETRY_AFTER,
    }
}

# What every route under /v1/opscore/agent/{agentId}/ can answer besides its own codes.
AGENT_ROUTE: Responses = {
    **UNAUTHORIZED,
    **FORBIDDEN,
    **TOO_LARGE,
    **RATE_LIMITED,
    **BAD_GATEWAY,
    **UNAVAILABLE,
}
