"""Webhook triggers: `POST /v1/opscore/triggers/{namespace}/{name}` starts one Workflow.

A call is decided in this order (docs/triggers.md gives the same table for callers):
404 no such WorkflowTrigger (or its template is gone); 413 body over the trigger's
`maxBodyBytes` (from Content-Length, and from the bytes actually read); 401/403 the caller
is not who the trigger's `auth` wants; 429 over the trigger's rate (with Retry-After);
422 the body is not JSON or leaves a required input of the template unset (each missing
input named); then the Workflow is created and the answer is 202 with its name. 503 (with
Retry-After) whenever the API server cannot be reached: nothing was created.

`Idempotency-Key` (else GitHub's `X-GitHub-Delivery`) names the Workflow after a hash of
the trigger's uid and the key (`opscore_logic.trigger.run_name`): the create of a repeated
delivery gets 409 from the API server, the existing Workflow is read, and the answer is the
same name (`created: false`). So a retried or redelivered call never starts a second run,
even across sidecar replicas or restarts, for as long as that Workflow exists. A Workflow
of that name that another trigger (or a user) made is not taken for ours: 409.

Cost per call (see docs/triggers.md): one API write (the create); reads are cached (at
most one GET each of trigger, Secret and template per `OPSCORE_TRIGGER_CACHE_SECONDS`),
plus one GET on a repeated delivery. The sidecar's Role needs `get` on workflowtriggers,
secrets and workflowtemplates, and `create`/`get` on workflows.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opscore_kube import (
    WORKFLOW_TEMPLATES,
    WORKFLOW_TRIGGERS,
    WORKFLOWS,
    Conflict,
    Invalid,
    KubeApiError,
    Unavailable,
)
from opscore_kube import NotFound as KubeNotFound
from opscore_logic.legacy import API_VERSION
from opscore_logic.trigger import map_inputs, missing_required, name_prefix, run_name
from opscore_logic.trigger_model import WorkflowTriggerSpec
from opscore_logic.workflow_model import WorkflowTemplateSpec
from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.quota import retry_after
from opscore_sidecar.trigger_auth import authenticate
from opscore_sidecar.trigger_docs import REQUEST_BODY, RESPONSES
from opscore_sidecar.workflow_start import STARTED_BY_LABEL

logger = logging.getLogger("opscore.sidecar.triggers")
router = APIRouter(tags=["webhook triggers"])

TRIGGER_PATH = "/v1/opscore/triggers/{namespace}/{name}"
STARTED_BY_TRIGGER = "trigger"
TRIGGER_ANNOTATION = "opscore.opspawn.io/trigger"
TRIGGER_UID_ANNOTATION = "opscore.opspawn.io/trigger-uid"
IDEMPOTENCY_ANNOTATION = "opscore.opspawn.io/idempotency-key"
_MAX_KEY_SHOWN = 256
_GENERATED_SUFFIX = 6  # generateName's `-` and five random characters

CALLS = Counter(
    "opscore_sidecar_trigger_calls_total",
    "Webhook trigger calls, by answer (created, repeated, or the refusal's status code).",
    ["result"],
)


class TriggerAccepted(BaseModel):
    """The Workflow the call started (or, for a repeated delivery, had started)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "workflow": "on-push-4f9c2a7d1e0b3c58",
                    "namespace": "opscore-system",
                    "created": True,
                    "message": "Workflow on-push-4f9c2a7d1e0b3c58 started",
                }
            ]
        }
    )

    workflow: str = Field(description="The Workflow's name.")
    namespace: str = Field(description="Its namespace (the trigger's).")
    created: bool = Field(
        description="False when an earlier call with the same idempotency key created it."
    )
    message: str


NamespacePath = Annotated[str, Path(description="The trigger's namespace.", max_length=63)]
NamePath = Annotated[str, Path(description="The WorkflowTrigger's name.", max_length=253)]


@router.post(
    TRIGGER_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TriggerAccepted,
    summary="Start a Workflow from a WorkflowTrigger",
    openapi_extra={"requestBody": REQUEST_BODY},
    responses=RESPONSES,
)
async def fire(
    namespace: NamespacePath,
    name: NamePath,
    request: Request,
    sidecar: Annotated[Sidecar, Depends(get_sidecar)],
    x_hub_signature_256: Annotated[
        str | None,
        Header(
            alias="X-Hub-Signature-256",
            description="`hmac` triggers: `sha256=` and the hex HMAC-SHA256 of the raw body.",
        ),
    ] = None,
    authorization: Annotated[
        str | None,
        Header(description="`apiKey` triggers: `Bearer KEY`, KEY scoped to the trigger."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Calls with the same key start one Workflow (repeats get its name).",
        ),
    ] = None,
    x_github_delivery: Annotated[
        str | None,
        Header(alias="X-GitHub-Delivery", description="Used as the key when none is given."),
    ] = None,
) -> TriggerAccepted:
    """Create one Workflow from the trigger's template with the inputs the body maps to."""
    try:
        return await _fire(
            sidecar,
            request,
            namespace=namespace,
            name=name,
            signature=x_hub_signature_256,
            authorization=authorization,
            key=idempotency_key or x_github_delivery,
        )
    except HTTPException as exc:
        CALLS.labels(str(exc.status_code)).inc()
        raise
    except RequestValidationError:
        CALLS.labels("422").inc()
        raise
    except Unavailable:
        CALLS.labels("503").inc()
        raise
    except KubeApiError:
        CALLS.labels("502").inc()
        raise


async def _fire(
    sidecar: Sidecar,
    request: Request,
    *,
    namespace: str,
    name: str,
    signature: str | None,
    authorization: str | None,
    key: str | None,
) -> TriggerAccepted:
    desk = sidecar.triggers
    found = None
    if namespace == sidecar.settings.namespace:
        found = await desk.read(WORKFLOW_TRIGGERS, namespace, name)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"No WorkflowTrigger {namespace}/{name} (this sidecar serves namespace "
            f"{sidecar.settings.namespace!r})",
        )
    try:
        spec = WorkflowTriggerSpec.model_validate(found.get("spec") or {})
    except ValidationError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"WorkflowTrigger {namespace}/{name} is not usable"
        ) from None
    uid = str(found.get("metadata", {}).get("uid") or "")
    raw = await _read_body(request, limit=spec.max_body_bytes)
    await authenticate(
        spec=spec,
        namespace=namespace,
        name=name,
        body=raw,
        signature=signature,
        authorization=authorization,
        keys=sidecar.keys,
        desk=desk,
    )
    wait = desk.admit(uid, spec.rate_limit)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Rate limit of WorkflowTrigger {name} exceeded "
            f"({spec.rate_limit.requests_per_minute}/min); nothing was started",
            headers={"Retry-After": retry_after(wait)},
        )
    inputs = await _inputs(sidecar, namespace, spec, raw)
    workflow, created = await _create(
        sidecar, namespace=namespace, name=name, uid=uid, spec=spec, inputs=inputs, key=key
    )
    CALLS.labels("created" if created else "repeated").inc()
    logger.info(
        "Trigger started a workflow" if created else "Trigger call repeated",
        extra={"trigger": name, "workflow": workflow},
    )
    verb = "started" if created else "already started by an earlier call with this key"
    return TriggerAccepted(
        workflow=workflow,
        namespace=namespace,
        created=created,
        message=f"Workflow {workflow} {verb}",
    )


async def _read_body(request: Request, *, limit: int) -> bytes:
    """The raw body, or 413 when it is over `limit`: declared so by Content-Length, or
    found so while reading. A refused body is still read to its end (bounded by the
    sidecar's own OPSCORE_MAX_BODY_BYTES, which the middleware enforces), so the client
    gets the 413 instead of a connection reset while it is still sending."""
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received <= limit and not too_large:
            chunks.append(chunk)
    if too_large or received > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"Request body exceeds the trigger's maxBodyBytes ({limit} bytes)",
        )
    return b"".join(chunks)


async def _inputs(
    sidecar: Sidecar, namespace: str, spec: WorkflowTriggerSpec, raw: bytes
) -> dict[str, Any]:
    """The run's inputs, or 422 naming every required input the body leaves unset (404
    when the trigger's template does not exist)."""
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except ValueError as exc:
        raise _invalid([(("body",), f"the body is not JSON: {exc}")]) from None
    template_name = spec.template_ref.name
    template = await sidecar.triggers.read(WORKFLOW_TEMPLATES, namespace, template_name)
    if template is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"The trigger's WorkflowTemplate {template_name!r} does not exist",
        )
    try:
        parameters = WorkflowTemplateSpec.model_validate(template.get("spec") or {}).parameters
    except ValidationError:
        parameters = []  # the operator fails such a run with InvalidSpec and says why
    mapped = map_inputs(body, fixed=spec.inputs, from_body=spec.inputs_from_body)
    missing = missing_required(parameters, mapped.inputs)
    if missing:
        raise _invalid([_missing(input_name, mapped.unfound) for input_name in missing])
    return mapped.inputs


def _not_json(constant: str) -> None:
    """NaN and Infinity are Python's, not JSON's: the API server would refuse them."""
    raise ValueError(f"{constant} is not a JSON value")


def _missing(input_name: str, unfound: dict[str, str]) -> tuple[tuple[str, ...], str]:
    """Where a missing input should have come from (the error's `loc`), and why."""
    path = unfound.get(input_name)
    if path is None:
        why = "the trigger maps no body path to it and gives no fixed value"
        return ("body",), f"required input {input_name!r} of the template: {why}"
    loc = ("body", *path.split("."))
    return loc, f"required input {input_name!r}: nothing at body path {path!r}"


def _invalid(problems: list[tuple[tuple[str, ...], str]]) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": loc, "msg": msg, "input": None} for loc, msg in problems]
    )


async def _create(
    sidecar: Sidecar,
    *,
    namespace: str,
    name: str,
    uid: str,
    spec: WorkflowTriggerSpec,
    inputs: dict[str, Any],
    key: str | None,
) -> tuple[str, bool]:
    """Create the run; with a key, a run that already exists under its name is the
    answer (the name, False). A same-named Workflow not made by this trigger is a 409."""
    annotations = {TRIGGER_ANNOTATION: name, TRIGGER_UID_ANNOTATION: uid}
    metadata: dict[str, Any] = {
        "namespace": namespace,
        "labels": {STARTED_BY_LABEL: STARTED_BY_TRIGGER},
        "annotations": annotations,
    }
    if key:
        metadata["name"] = run_name(name, uid, key)
        annotations[IDEMPOTENCY_ANNOTATION] = key[:_MAX_KEY_SHOWN]
    else:
        metadata["generateName"] = name_prefix(name, room=_GENERATED_SUFFIX) + "-"
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {"templateRef": {"name": spec.template_ref.name}, "inputs": inputs},
    }
    if spec.ttl_seconds_after_finished is not None:
        body["spec"]["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    for _ in range(2):
        try:
            created = await sidecar.kube.create(WORKFLOWS, namespace, body)
            return str(created["metadata"]["name"]), True
        except Invalid as exc:
            raise _invalid([(("body",), exc.message)]) from None
        except Conflict:
            if not key:
                raise
        try:
            existing = await sidecar.kube.get(WORKFLOWS, namespace, metadata["name"])
        except KubeNotFound:
            continue  # deleted between our create and our read: create it again
        theirs = (existing.get("metadata", {}).get("annotations") or {}).get(TRIGGER_UID_ANNOTATION)
        if theirs != uid:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"Workflow {metadata['name']} exists and was not started by this trigger",
            )
        return str(metadata["name"]), False
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        f"Workflow {metadata['name']} was being created and deleted at once; retry",
    )
