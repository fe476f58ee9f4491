"""The WorkflowTrigger resource: a signed HTTP call that starts one run of a template.

Spec is what the sidecar needs to turn a request into a Workflow: the template, how the
JSON body maps to its inputs, how callers prove who they are (an HMAC secret, GitHub's
`X-Hub-Signature-256`, or an API key scoped to this trigger), and how much a caller may
send (requests per minute, body bytes). It has no status: the sidecar answers each call
with the Workflow it created, and the runs carry the trigger's name in an annotation.
See docs/triggers.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from opscore_logic.base import WireModel
from opscore_logic.workflow_model import TemplateRef

DEFAULT_MAX_BODY_BYTES = 64 * 1024
MAX_BODY_BYTES_LIMIT = 1024 * 1024


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class SecretKeyRef(WireModel):
    """One key of a Secret in the trigger's namespace."""

    name: str = Field(min_length=1, max_length=253, description="The Secret's name.")
    key: str = Field(min_length=1, max_length=253, description="The key inside the Secret.")


class HmacAuth(WireModel):
    """GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
    body>`, keyed with the Secret's value."""

    secret_ref: SecretKeyRef = Field(description="Where the shared secret is.")


class ApiKeyAuth(WireModel):
    """`Authorization: Bearer KEY`, where KEY is a sidecar API key whose scope names this
    trigger (`KEY trigger:NAMESPACE/NAME` in OPSCORE_API_KEYS_FILE)."""


class TriggerAuth(WireModel):
    """How callers authenticate; exactly one of `hmac` and `apiKey`."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("has(self.hmac) != has(self.apiKey)", "set exactly one of hmac and apiKey")
        )
    )

    hmac: HmacAuth | None = Field(default=None, description="A shared-secret signature.")
    api_key: ApiKeyAuth | None = Field(
        default=None, description="A sidecar API key scoped to `trigger:NAMESPACE/NAME`."
    )


class TriggerRateLimit(WireModel):
    """A token bucket per trigger: `burst` calls at once, refilled at
    `requestsPerMinute`."""

    requests_per_minute: int = Field(
        default=60, ge=1, le=60000, description="Sustained calls per minute."
    )
    burst: int = Field(default=10, ge=1, le=10000, description="Calls allowed at once.")


class WorkflowTriggerSpec(WireModel):
    """Which template a call runs, with which inputs, for whom, and how often."""

    template_ref: TemplateRef = Field(description="The WorkflowTemplate each call runs.")
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Fixed inputs of every run (the body's values override them).",
    )
    inputs_from_body: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Input name -> path into the JSON body: dot-separated keys, a key of digits "
            "indexes a list (`repository.full_name`, `commits.0.id`). A path that is "
            "absent (or null) leaves the input unset."
        ),
    )
    auth: TriggerAuth = Field(description="How callers authenticate.")
    rate_limit: TriggerRateLimit = Field(
        # A default value (not a factory) so the CRD has it and the API server fills it
        # in: `kubectl get workflowtriggers` shows the rate in force.
        default=TriggerRateLimit(),
        description="Over it, a call is answered 429 with Retry-After.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Each run's ttlSecondsAfterFinished: deleted this long after it finished. A "
            "deleted run frees its idempotency key, so keep it longer than callers retry."
        ),
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=2,
        le=MAX_BODY_BYTES_LIMIT,
        description=(
            "Larger bodies get 413 (the sidecar's OPSCORE_MAX_BODY_BYTES caps every route, "
            "this one too)."
        ),
    )
