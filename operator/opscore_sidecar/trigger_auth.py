"""Who may call a WorkflowTrigger: its HMAC signature, or an API key scoped to it.

- `hmac`: `X-Hub-Signature-256: sha256=<hex>` over the raw body, keyed with the value of
  the trigger's Secret key (read through the API, cached, see `trigger_desk`). A trigger
  whose Secret or key is missing refuses every call with 401 (fail closed) and logs why.
- `apiKey`: `Authorization: Bearer KEY`, checked by the same `KeyStore` as the agents'
  keys (constant time, re-read on rotation). The key's scope must name the trigger,
  `trigger:NAMESPACE/NAME`: an unscoped key, or one scoped to agents only, gets 403, so a
  trigger caller's key can start that trigger's runs and nothing else.

Refused callers spend none of the trigger's rate limit (the endpoint checks this first).
"""

from __future__ import annotations

import base64
import binascii
import logging

from fastapi import HTTPException, status

from opscore_kube import SECRETS
from opscore_logic.trigger import api_key_scope, signature_problem
from opscore_logic.trigger_model import WorkflowTriggerSpec
from opscore_sidecar.auth import KeyStore
from opscore_sidecar.trigger_desk import TriggerDesk

logger = logging.getLogger("opscore.sidecar.triggers")

HMAC_CHALLENGE = 'HMAC-SHA256 realm="opscore-trigger", header="X-Hub-Signature-256"'


def unauthorized(detail: str, *, challenge: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


async def authenticate(
    *,
    spec: WorkflowTriggerSpec,
    namespace: str,
    name: str,
    body: bytes,
    signature: str | None,
    authorization: str | None,
    keys: KeyStore,
    desk: TriggerDesk,
) -> None:
    """Return when the caller may fire the trigger; else raise 401 (or 403 for a valid
    key that is not scoped to it)."""
    if spec.auth.hmac is not None:
        secret = await _secret(desk, namespace, spec)
        if secret is None:
            raise unauthorized(
                "Signature cannot be verified: the trigger's secret is not available",
                challenge=HMAC_CHALLENGE,
            )
        problem = signature_problem(secret=secret, header=signature, body=body)
        if problem is not None:
            raise unauthorized(f"Invalid signature: {problem}", challenge=HMAC_CHALLENGE)
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(
            "Missing bearer token (Authorization: Bearer <key scoped to this trigger>)",
            challenge="Bearer",
        )
    principal = keys.authenticate(token.strip())
    if principal is None:
        raise unauthorized("Invalid API key", challenge="Bearer")
    wanted = api_key_scope(namespace, name)
    if principal.scope is None or wanted not in principal.scope:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"This API key is not scoped to {wanted!r}",
        )


async def _secret(desk: TriggerDesk, namespace: str, spec: WorkflowTriggerSpec) -> bytes | None:
    """The shared secret's bytes, or None (logged) when the Secret or its key is missing."""
    assert spec.auth.hmac is not None
    ref = spec.auth.hmac.secret_ref
    found = await desk.read(SECRETS, namespace, ref.name)
    encoded = ((found or {}).get("data") or {}).get(ref.key)
    if not isinstance(encoded, str):
        logger.error("Trigger secret missing", extra={"secret": ref.name, "key": ref.key})
        return None
    try:
        value = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        logger.error("Trigger secret is not base64", extra={"secret": ref.name, "key": ref.key})
        return None
    if not value:
        logger.error("Trigger secret is empty", extra={"secret": ref.name, "key": ref.key})
        return None
    return value
