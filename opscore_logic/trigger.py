"""What a webhook call means: its signature, its inputs, and the name of its run.

Pure: the sidecar reads the request, the WorkflowTrigger, its Secret and its template, and
passes them here; nothing in this module does I/O (see docs/triggers.md for the rules as a
caller sees them).

- `signature_problem`: GitHub's `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the
  raw body bytes, compared in constant time. Why over the raw bytes: re-serialised JSON
  would not match what the caller signed.
- `map_inputs`: the trigger's fixed inputs, overlaid with the values its `inputsFromBody`
  paths find in the body; `missing_required` names the template's required parameters that
  are still unset after defaults (the sidecar answers 422 naming them).
- `run_name`: with an idempotency key, the Workflow's name is a hash of the trigger's uid
  and the key, so a repeated delivery meets the first one's Workflow on create (409) and
  never starts a second run. The uid, not the name: a trigger deleted and re-created under
  the same name is a new trigger, and its deliveries are new runs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opscore_logic.workflow_model import TemplateParameter

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="
#: Workflow names are DNS-1123 subdomains of at most 253 characters.
MAX_NAME_LENGTH = 253
_HASH_CHARS = 16
#: The API key scope that lets a key call one trigger: `trigger:NAMESPACE/NAME`.
SCOPE_PREFIX = "trigger:"


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value for `body` (what GitHub sends)."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_problem(*, secret: bytes, header: str | None, body: bytes) -> str | None:
    """Why `header` is not the signature of `body` under `secret`, or None when it is.

    The comparison is of fixed-length digests in constant time, so neither timing nor the
    answer tells a caller how much of a guess was right.
    """
    if not header:
        return f"missing {SIGNATURE_HEADER} header"
    if not header.startswith(SIGNATURE_PREFIX):
        return f"{SIGNATURE_HEADER} must be 'sha256=<hex>'"
    expected = sign(secret, body).encode()
    presented = header.strip().lower().encode("latin-1", "replace")
    if not hmac.compare_digest(expected, presented):
        return f"{SIGNATURE_HEADER} does not match the body"
    return None


def api_key_scope(namespace: str, name: str) -> str:
    """The scope entry an API key needs to call this trigger."""
    return f"{SCOPE_PREFIX}{namespace}/{name}"


_ABSENT = object()


def lookup(body: Any, path: str) -> Any:
    """The value at a dotted `path` in `body`, or `_ABSENT`. A key of digits indexes a list;
    anything else on a list, or any key on a scalar, finds nothing."""
    current = body
    for key in path.split("."):
        if isinstance(current, Mapping):
            if key not in current:
                return _ABSENT
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return _ABSENT
    return current


@dataclass(frozen=True, slots=True)
class MappedInputs:
    """The inputs a call gives its run, and the body paths that found nothing (by input)."""

    inputs: dict[str, Any]
    unfound: dict[str, str]


def map_inputs(
    body: Any, *, fixed: Mapping[str, Any], from_body: Mapping[str, str]
) -> MappedInputs:
    """`fixed`, overlaid with what each `from_body` path finds in `body` (null is absent)."""
    inputs = dict(fixed)
    unfound: dict[str, str] = {}
    for name, path in sorted(from_body.items()):
        value = lookup(body, path)
        if value is _ABSENT or value is None:
            unfound[name] = path
        else:
            inputs[name] = value
    return MappedInputs(inputs, unfound)


def missing_required(parameters: list[TemplateParameter], inputs: Mapping[str, Any]) -> list[str]:
    """The template's required parameters neither `inputs` nor a default gives, sorted
    (the same rule `templates.resolve` applies when the run starts)."""
    return sorted(
        p.name for p in parameters if p.required and p.name not in inputs and p.default is None
    )


def run_name(trigger_name: str, trigger_uid: str, idempotency_key: str) -> str:
    """The Workflow a delivery with `idempotency_key` creates: the same name whoever
    computes it, for as long as the trigger (its uid) exists."""
    digest = hashlib.sha256(
        f"{trigger_uid}/{idempotency_key}".encode("utf-8", "surrogatepass")
    ).hexdigest()
    return f"{name_prefix(trigger_name, room=_HASH_CHARS + 1)}-{digest[:_HASH_CHARS]}"


def name_prefix(trigger_name: str, *, room: int) -> str:
    """The trigger's name cut to leave `room` characters of a Workflow name, without a
    trailing `-` or `.` (a name must end in an alphanumeric)."""
    return trigger_name[: MAX_NAME_LENGTH - room].rstrip("-.")
