"""The earlier Ops-Core's workflow trigger: `POST /v1/opscore/agent/{agentId}/workflow`.

Existing clients start a workflow "for an agent" with a definition id or an inline
definition plus an `initialPayload`, and get 202 `{sessionId, workflowId, message}`. Here
that becomes what a user would `kubectl apply`: a Workflow resource in the sidecar's
namespace, which the operator then runs like any other.

- `workflowDefinitionId` names a WorkflowTemplate: by its name, or by the id of an earlier
  Ops-Core definition imported with `kubectl opscore import` (the template name derived
  from that id, checked against the template's `legacy-id` annotation). The Workflow
  references it (`spec.templateRef`).
- `workflowDefinition` (the earlier JSON format) is converted with `opscore_logic.legacy`,
  validated the same way the importer validates files, and inlined as `spec.steps`.
- `initialPayload` becomes `spec.inputs`. (The earlier Ops-Core replaced the first task's
  parameters with it instead; steps read it here as `{{ inputs.NAME }}`.)
- `sessionId` is the Workflow's uid (what AgentKit messages carry as `opscore_session_id`)
  and `workflowId` its generated name.

As before, the agent must exist (404 otherwise) and the API key must be allowed to act for
it. Which agents run the steps is decided by the steps (capabilities), not by the path's
agent; the path's agent is recorded in an annotation. The sidecar's service account needs
`get` on workflowtemplates and `create` on workflows for this endpoint.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from opscore_kube import WORKFLOW_TEMPLATES, WORKFLOWS, Invalid, NotFound
from opscore_logic.legacy import (
    API_VERSION,
    LEGACY_ID_ANNOTATION,
    LegacyImportError,
    is_dns1123_subdomain,
    template_manifest,
    template_name,
    validate_legacy,
)
from opscore_logic.workflow_model import WorkflowSpec
from opscore_sidecar.agent_directory import Body
from opscore_sidecar.auth import Principal
from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.quota import require_agent_quota
from opscore_sidecar.responses import AGENT_ROUTE, UNDECODABLE
from opscore_sidecar.schemas import ErrorBody, WorkflowStarted, WorkflowTrigger

logger = logging.getLogger("opscore.sidecar.workflows")
router = APIRouter(tags=["workflows (earlier Ops-Core API)"])

REQUESTED_FOR_ANNOTATION = "opscore.opspawn.io/requested-for-agent"
STARTED_BY_LABEL = "opscore.opspawn.io/started-by"
STARTED_BY_VALUE = "legacy-api"
_MAX_BASE = 57  # generateName adds 5 characters; keep names within a DNS label

AgentIdPath = Annotated[str, Path(description="The agent's AgentKit id.", max_length=253)]


@router.post(
    "/v1/opscore/agent/{agentId}/workflow",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WorkflowStarted,
    summary="Start a workflow (earlier Ops-Core API)",
    responses={
        **AGENT_ROUTE,
        **UNDECODABLE,
        404: {"model": ErrorBody, "description": "No such agent, or no such definition."},
        422: {
            "description": (
                "Not exactly one of workflowDefinitionId and workflowDefinition, or an "
                "invalid inline definition."
            )
        },
    },
)
async def start_workflow(
    agentId: AgentIdPath,
    trigger: WorkflowTrigger,
    principal: Annotated[Principal, Depends(require_agent_quota)],
    sidecar: Annotated[Sidecar, Depends(get_sidecar)],
) -> WorkflowStarted:
    """Create a Workflow resource running the definition; 202 once it exists."""
    if await sidecar.directory.find(agentId) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No Agent found for agentId {agentId!r}")
    annotations: dict[str, str] = {REQUESTED_FOR_ANNOTATION: agentId}
    spec: dict[str, Any]
    if trigger.workflowDefinitionId is not None:
        template = await _find_template(sidecar, trigger.workflowDefinitionId)
        if template is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"No WorkflowTemplate for workflowDefinitionId {trigger.workflowDefinitionId!r} "
                f"in namespace {sidecar.settings.namespace!r}",
            )
        base = str(template["metadata"]["name"])
        spec = {"templateRef": {"name": base}}
        annotations[LEGACY_ID_ANNOTATION] = trigger.workflowDefinitionId
    else:
        try:
            manifest = template_manifest(validate_legacy(trigger.workflowDefinition))
        except LegacyImportError as exc:
            raise _invalid(("body", "workflowDefinition", exc.path), str(exc)) from None
        base = str(manifest["metadata"]["name"])
        spec = {"steps": manifest["spec"]["steps"]}
        annotations.update(manifest["metadata"].get("annotations") or {})
    if trigger.initialPayload:
        spec["inputs"] = trigger.initialPayload
    try:
        WorkflowSpec.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise _invalid(("body", *first["loc"]), first["msg"]) from None
    body: Body = {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "generateName": base[:_MAX_BASE].rstrip("-.") + "-",
            "namespace": sidecar.settings.namespace,
            "labels": {STARTED_BY_LABEL: STARTED_BY_VALUE},
            "annotations": annotations,
        },
        "spec": spec,
    }
    try:
        created = await sidecar.kube.create(WORKFLOWS, sidecar.settings.namespace, body)
    except Invalid as exc:
        raise _invalid(("body",), exc.message) from None
    name = str(created["metadata"]["name"])
    uid = str(created["metadata"].get("uid") or "")
    logger.info(
        "Workflow started through the earlier Ops-Core API",
        extra={"agent_id": agentId, "workflow": name, "session_id": uid},
    )
    return WorkflowStarted(sessionId=uid, workflowId=name, message=f"Workflow {name} started")


async def _find_template(sidecar: Sidecar, definition_id: str) -> Body | None:
    """The WorkflowTemplate named `definition_id`, else the one the legacy importer made
    from a definition with that id (name derived by `template_name`, id in annotation)."""
    namespace = sidecar.settings.namespace
    if is_dns1123_subdomain(definition_id):
        found = await _get_template(sidecar, namespace, definition_id)
        if found is not None:
            return found
    mapped = template_name(definition_id)
    if mapped == definition_id:
        return None
    found = await _get_template(sidecar, namespace, mapped)
    if found is None:
        return None
    legacy_id = (found.get("metadata", {}).get("annotations") or {}).get(LEGACY_ID_ANNOTATION)
    return found if legacy_id in (None, definition_id) else None


async def _get_template(sidecar: Sidecar, namespace: str, name: str) -> Body | None:
    try:
        return await sidecar.kube.get(WORKFLOW_TEMPLATES, namespace, name)
    except NotFound:
        return None


def _invalid(loc: tuple[Any, ...], message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": None}]
    )
