"""The CRD manifests and their reference page, generated from the pydantic models.

The models are the one source of truth: the API server validates with the schema made
here, the operator parses with the models. Pure like the rest of the core (text out, no
files): `make crds` (`opscore_testbed.crd_files`) writes `crds/` and
`docs/crd-reference.md`, and a test fails when they drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel

from opscore_logic.agent_model import AgentSpec, AgentStatus
from opscore_logic.approval_model import ApprovalSpec
from opscore_logic.schedule_model import WorkflowScheduleSpec, WorkflowScheduleStatus
from opscore_logic.trigger_model import WorkflowTriggerSpec
from opscore_logic.workflow_model import WorkflowSpec, WorkflowStatus, WorkflowTemplateSpec

GROUP = "opscore.opspawn.io"
VERSION = "v1alpha1"
CATEGORY = "opscore"

Schema = dict[str, Any]


def structural(model: type[BaseModel], *, with_defaults: bool) -> Schema:
    """The model's JSON schema rewritten into a Kubernetes structural schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.pop("$defs", {})
    return _convert(raw, defs, with_defaults=with_defaults)


def _convert(node: Schema, defs: dict[str, Schema], *, with_defaults: bool) -> Schema:
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            node = {**_convert(options[0], defs, with_defaults=with_defaults), **node}
        else:
            node["x-kubernetes-preserve-unknown-fields"] = True
    node.pop("title", None)
    if not with_defaults or node.get("default", 0) is None:
        node.pop("default", None)
    if "properties" in node:
        node["type"] = "object"
        node["properties"] = {
            key: _convert(value, defs, with_defaults=with_defaults)
            for key, value in node["properties"].items()
        }
    additional = node.get("additionalProperties")
    if additional is True or (
        node.get("type") == "object" and "properties" not in node and not additional
    ):
        node.pop("additionalProperties", None)
        node["type"] = "object"
        node["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(additional, dict):
        node["additionalProperties"] = _convert(additional, defs, with_defaults=with_defaults)
    if "items" in node:
        node["items"] = _convert(node["items"], defs, with_defaults=with_defaults)
    if "type" not in node and "enum" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


@dataclass(frozen=True)
class Kind:
    """Everything about a kind that the models do not say."""

    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel] | None
    columns: list[dict[str, Any]] = field(default_factory=list)
    spec_required: bool = True
    description: str = ""
    selectable_fields: list[str] = field(default_factory=list)
    # Status fields the API server fills in when read before the operator wrote any
    # status (e.g. a Workflow is `Pending` from its creation, for `kubectl get`).
    status_defaults: dict[str, Any] = field(default_factory=dict)


def crd(kind: Kind) -> Schema:
    """A complete CustomResourceDefinition for `kind`."""
    properties: Schema = {"spec": structural(kind.spec, with_defaults=True)}
    subresources: Schema = {}
    if kind.status is not None:
        properties["status"] = structural(kind.status, with_defaults=False)
        if kind.status_defaults:
            properties["status"]["default"] = {}
            for name, value in kind.status_defaults.items():
                properties["status"]["properties"][name]["default"] = value
        subresources["status"] = {}
    schema: Schema = {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            **properties,
        },
    }
    if kind.spec_required:
        schema["required"] = ["spec"]
    version: Schema = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": subresources,
        "additionalPrinterColumns": kind.columns,
    }
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": path} for path in kind.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": kind.short_names,
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def _col(name: str, path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


AGE = _col("Age", ".metadata.creationTimestamp", "date")

KINDS = [
    Kind(
        kind="Agent",
        plural="agents",
        short_names=["agt"],
        spec=AgentSpec,
        status=AgentStatus,
        spec_required=False,
        description="An AI agent registered in AgentKit, and its operational state.",
        # `--field-selector spec.agentId=ID`: the sidecar finds an Agent by AgentKit id
        # without listing them all (a user-declared one, before the operator labels it),
        # by its previous id (reports sent during a re-registration) and by agentName.
        selectable_fields=[".spec.agentId", ".spec.previousAgentId", ".spec.agentName"],
        columns=[
            _col("Agent-Name", ".spec.agentName"),
            _col("State", ".status.state"),
            _col("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            _col("Task", ".status.currentTask"),
            _col("Last-Seen", ".status.lastSeen", "date"),
            AGE,
            _col("Reason", '.status.conditions[?(@.type=="Ready")].reason', priority=1),
            _col("Agent-Id", ".spec.agentId", priority=1),
            _col("Raw-State", ".status.rawState", priority=1),
            _col("Capabilities", ".spec.capabilities", priority=1),
            _col("Succeeded", ".status.tasksSucceeded", "integer", priority=1),
            _col("Failed", ".status.tasksFailed", "integer", priority=1),
            _col("Tokens", ".status.usage.totalTokens", "integer", priority=1),
            _col("Last-Error", ".status.lastError", priority=1),
        ],
    ),
    Kind(
        kind="Workflow",
        plural="workflows",
        short_names=["wf"],
        spec=WorkflowSpec,
        status=WorkflowStatus,
        description="A run of steps, each a task for an agent, dispatched through AgentKit.",
        status_defaults={"phase": "Pending"},
        columns=[
            _col("Phase", ".status.phase"),
            _col("Progress", ".status.progress"),
            AGE,
            _col("Message", ".status.message"),
            _col("Started", ".status.startTime", "date", priority=1),
            _col("Finished", ".status.completionTime", "date", priority=1),
            _col("Tokens", ".status.usage.totalTokens", "integer", priority=1),
            _col("Cost", ".status.usage.cost", priority=1),
        ],
    ),
    Kind(
        kind="WorkflowTemplate",
        plural="workflowtemplates",
        short_names=["wft"],
        spec=WorkflowTemplateSpec,
        status=None,
        description="A reusable workflow definition that Workflows reference by name.",
        columns=[_col("Description", ".spec.description"), AGE],
    ),
    Kind(
        kind="WorkflowSchedule",
        plural="workflowschedules",
        short_names=["wfs"],
        spec=WorkflowScheduleSpec,
        status=WorkflowScheduleStatus,
        description="Workflows created on a cron schedule, as a CronJob creates Jobs.",
        columns=[
            _col("Schedule", ".spec.schedule"),
            _col("Time-Zone", ".spec.timeZone"),
            _col("Suspend", ".spec.suspend", "boolean"),
            _col("Active", ".status.active[*].name"),
            _col("Last-Schedule", ".status.lastScheduleTime", "date"),
            AGE,
            _col("Next-Schedule", ".status.nextScheduleTime", priority=1),
            _col("Last-Success", ".status.lastSuccessfulRun", priority=1),
            _col("Policy", ".spec.concurrencyPolicy", priority=1),
            _col("Reason", '.status.conditions[?(@.type=="Scheduled")].reason', priority=1),
        ],
    ),
    Kind(
        kind="Approval",
        plural="approvals",
        short_names=["apv"],
        spec=ApprovalSpec,
        status=None,
        description=(
            "One approver's decision on one gated Workflow step; the API server vouches "
            "for the approver (docs/approvals.md)."
        ),
        columns=[
            _col("Workflow", ".spec.workflow"),
            _col("Step", ".spec.step"),
            _col("Decision", ".spec.decision"),
            _col("Approver", ".spec.approver.username"),
            AGE,
            _col("Reason", ".spec.reason", priority=1),
        ],
    ),
    Kind(
        kind="WorkflowTrigger",
        plural="workflowtriggers",
        short_names=["wftr"],
        spec=WorkflowTriggerSpec,
        status=None,
        description=(
            "A webhook that starts a Workflow from a template: a signed POST to the "
            "sidecar's /v1/opscore/triggers/NAMESPACE/NAME."
        ),
        columns=[
            _col("Template", ".spec.templateRef.name"),
            _col("Per-Minute", ".spec.rateLimit.requestsPerMinute", "integer"),
            AGE,
        ],
    ),
]


def render(kind: Kind) -> str:
    header = "# Generated by `make crds` from opscore_logic models. Do not edit by hand.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=100)


def _field_rows(node: Schema, path: str, rows: list[str]) -> None:
    for name, child in (node.get("properties") or {}).items():
        where = f"{path}.{name}" if path else name
        type_ = child.get("type", "any")
        if type_ == "array":
            type_ = f"[]{child.get('items', {}).get('type', 'any')}"
        extras = []
        if "default" in child:
            extras.append(f"default `{json.dumps(child['default'])}`")
        if "enum" in child:
            extras.append("one of " + ", ".join(f"`{v}`" for v in child["enum"]))
        for bound, word in (("minimum", "min"), ("maximum", "max"), ("maxItems", "max items")):
            if bound in child:
                extras.append(f"{word} {child[bound]}")
        text = " ".join(str(child.get("description", "")).split())
        if extras:
            text += " (" + "; ".join(extras) + ")"
        rows.append(f"| `{where}` | {type_} | {text} |")
        _field_rows(child, where, rows)
        if "items" in child:
            _field_rows(child["items"], f"{where}[]", rows)


def render_reference() -> str:
    """docs/crd-reference.md: every field of every kind, generated like the CRDs."""
    out = [
        "# CRD reference",
        "",
        f"Group `{GROUP}`, version `{VERSION}`, namespaced. Generated by `make crds` from the "
        "pydantic models in `opscore_logic/` (do not edit by hand); `kubectl explain` shows "
        "the same descriptions.",
    ]
    for kind in KINDS:
        schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out += [
            "",
            f"## {kind.kind}",
            "",
            f"{kind.description} Short name `{kind.short_names[0]}`, category `{CATEGORY}`.",
            "",
        ]
        rules = _rules(schema)
        if rules:
            out += ["Rules the API server enforces:", ""] + [f"- {r}" for r in rules] + [""]
        out += ["| field | type | meaning |", "| --- | --- | --- |"]
        rows: list[str] = []
        for part in ("spec", "status"):
            if part in schema["properties"]:
                _field_rows({"properties": {part: schema["properties"][part]}}, "", rows)
        out += rows
    return "\n".join(out) + "\n"


def _rules(node: Schema) -> list[str]:
    found = [r["message"] for r in node.get("x-kubernetes-validations", [])]
    for child in (node.get("properties") or {}).values():
        found += _rules(child)
    if "items" in node:
        found += _rules(node["items"])
    return list(dict.fromkeys(found))
