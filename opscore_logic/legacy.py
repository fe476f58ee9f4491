"""Import a workflow definition of the earlier Ops-Core as a WorkflowTemplate manifest.

Users of the earlier Ops-Core kept their workflows as JSON or YAML files of the form
`{id, name, description?, version, tasks: [{taskId, name, agentCapability, parameters,
nextTaskId}]}` (agentkit-contract.md section 5). This module turns one such definition into
the manifest Ops-Core now runs, so a migration is `kubectl opscore import FILE | kubectl
apply --server-side -f -`. It is pure: text or data in, plain dicts out; reading files and
printing YAML is the command's job (`opscore_cli.legacy_import`).

Reading the input
    JSON is tried first, then YAML (JSON is nearly, but not exactly, a subset of YAML, so a
    JSON file is never read by the YAML parser's rules). The top level must be a mapping.

Validation (fail closed: a migration that silently changes a workflow is worse than none)
    Every problem is reported as one line naming the field in the input, e.g.
    `tasks[1].nextTaskId: 'step_9' is not a taskId in this workflow`. Only the first
    problem is reported (with a count of the others for structural errors).

    - Types are strict: `name`, `agentCapability` and `description` must be strings and
      `parameters` an object. `id`, `taskId`, `nextTaskId` and `version` may also be YAML
      integers (`taskId: 1`), and `version` a YAML float (`version: 1.0`), because YAML
      turns unquoted numbers into numbers; they are taken as their decimal text (quote
      `version: "1.10"` to keep the trailing zero).
    - As in the earlier Ops-Core's own model, `version` defaults to "1.0" and `description`
      is optional; `parameters` defaults to `{}` and a missing `nextTaskId` means null (end
      of chain). A forgotten or misspelt `nextTaskId` cannot go unnoticed: the task after it
      becomes a second chain head, which is an error.
    - Unknown fields are errors, not ignored: the earlier format had no retry, timeout or
      condition fields, so an unknown key is a typo or something this importer would drop.
    - The tasks form exactly one chain: taskIds are unique, each `nextTaskId` names a task,
      exactly one task (the chain head) is named by no `nextTaskId`, following
      `nextTaskId` from the head never comes back to a task (no cycle) and reaches every
      task. The head need not be `tasks[0]`: the chain, not the list, defines the order.
    - `parameters` must be JSON (string keys; no YAML dates, NaN, ...): they are stored in a
      Kubernetes object and sent to agents as JSON. Strings in `parameters` must not contain
      `{{ ... }}`: Ops-Core renders those as references (`{{ inputs.x }}`), the earlier
      Ops-Core sent them as literal text, and there is no escape syntax to keep them literal.
    - At most 100 tasks (the limit of steps in a WorkflowTemplate).
    - Null values inside `parameters` are kept, but client-side `kubectl apply` drops
      null-valued keys (checked on kube-apiserver 1.36: `{"a": null}` is stored as `{}`);
      `null_parameters` lists them so the CLI can warn. Use `kubectl apply --server-side`
      (or `kubectl create`), which keep them.

The WorkflowTemplate
    - `metadata.name` comes from `id` (`template_name`): an id that is already a DNS-1123
      subdomain is used as is; otherwise it is lowercased, `_`, spaces and other whitespace
      become `-`, every other character outside `[a-z0-9.-]` is removed, runs of `-` collapse,
      each dot-separated part is trimmed of `-`, the result is cut to 253 characters, and an
      empty result becomes `legacy-workflow`. Distinct ids can map to one name (`a_b`, `A-B`);
      the original is kept in the annotation `opscore.opspawn.io/legacy-id`, and
      `opscore.opspawn.io/legacy-version` keeps the version.
    - `spec.description` is `"<name>: <description>"` (or whichever of the two is set).
    - One step per task, in chain order. `name` is a DNS label from `taskId` (`step_names`):
      a taskId that is already a label is kept; otherwise the same rules as above apply with
      `.` also becoming `-`, cut to 63 characters, `task` if nothing is left. Collisions
      (`step_1` and `step-1`) are resolved deterministically: taskIds that are already valid
      labels keep them, then in chain order the first task to want a name gets it and later
      ones get `-2`, `-3`, ... (the first suffix not taken).
    - `task` is the legacy task `name` (the AgentKit task name); `capabilities` is
      `[agentCapability]` (routing by capability, as before); `parameters` are copied as is.
    - `dependsOn` is explicit on every step: the previous step in the chain, and `[]` on the
      head. The chain is then in the manifest itself, so reordering or inserting steps when
      editing the imported template cannot silently rewire it.
    - `retries: {limit: 3}` on every step: the earlier Ops-Core intended a fixed 3 retries
      per task (its Task model had `maxRetries = 3`); backoff keeps Ops-Core's defaults. The
      annotation `opscore.opspawn.io/legacy-retries` says so on the object.
    - No template parameters: the earlier format had no inputs.

    The result is checked with `WorkflowTemplateSpec.model_validate` and `graph_problems`
    before it is returned, so what `kubectl apply` receives passes the CRD schema.

The Workflow (optional)
    `workflow_manifest` makes a Workflow running the template (`spec.templateRef`) with
    `spec.inputs` as given (string values, like `--input k=v` on a command line).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from opscore_logic.graph import graph_problems
from opscore_logic.names import MAX_NAME_LENGTH as MAX_LABEL
from opscore_logic.names import is_dns1123_label
from opscore_logic.templating import references
from opscore_logic.workflow_model import MAX_STEPS, WorkflowSpec, WorkflowTemplateSpec

API_VERSION = "opscore.opspawn.io/v1alpha1"
LEGACY_ID_ANNOTATION = "opscore.opspawn.io/legacy-id"
LEGACY_VERSION_ANNOTATION = "opscore.opspawn.io/legacy-version"
LEGACY_RETRIES_ANNOTATION = "opscore.opspawn.io/legacy-retries"
LEGACY_RETRIES = 3
RETRIES_NOTE = (
    f"retries.limit={LEGACY_RETRIES} on every step (the earlier Ops-Core intended a fixed "
    f"{LEGACY_RETRIES} retries per task)"
)
DEFAULT_TEMPLATE_NAME = "legacy-workflow"
DEFAULT_STEP_NAME = "task"

MAX_SUBDOMAIN = 253
_LABEL_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_LABEL_RE}(\.{_LABEL_RE})*")
_WHITESPACE = re.compile(r"\s+")
_DASHES = re.compile(r"-{2,}")


class LegacyImportError(ValueError):
    """Why a legacy definition cannot be imported, with the input field it is about.

    `str()` is the one-line message for users: `<path>: <reason>`.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


# --- Names -------------------------------------------------------------------------------


def is_dns1123_subdomain(value: str) -> bool:
    """Whether Kubernetes accepts `value` as an object name (metadata.name)."""
    return len(value) <= MAX_SUBDOMAIN and _SUBDOMAIN.fullmatch(value) is not None


def _fold(value: str, *, keep: str) -> str:
    """Lowercase; `_` and whitespace to `-`; drop characters outside `[a-z0-9-]` + keep."""
    folded = _WHITESPACE.sub("-", value.lower().replace("_", "-"))
    return re.sub(rf"[^a-z0-9\-{re.escape(keep)}]", "", folded)


def _label_part(value: str) -> str:
    return _DASHES.sub("-", value).strip("-")


def template_name(legacy_id: str) -> str:
    """The WorkflowTemplate name for a legacy workflow id (deterministic, always valid).

    Valid names are kept, so re-importing is stable and `template_name` is idempotent.
    """
    if is_dns1123_subdomain(legacy_id):
        return legacy_id
    parts = (_label_part(part) for part in _fold(legacy_id, keep=".").split("."))
    name = ".".join(part for part in parts if part)[:MAX_SUBDOMAIN].rstrip("-.")
    return name or DEFAULT_TEMPLATE_NAME


def step_label(task_id: str) -> str:
    """The step name a taskId wants, before collisions are resolved (always a DNS label)."""
    if is_dns1123_label(task_id):
        return task_id
    label = _label_part(_fold(task_id.replace(".", "-"), keep=""))[:MAX_LABEL].rstrip("-")
    return label or DEFAULT_STEP_NAME


def step_names(task_ids: Sequence[str]) -> list[str]:
    """Unique step names for taskIds given in chain order (see the module docstring)."""
    wanted = [step_label(task_id) for task_id in task_ids]
    names: list[str | None] = [
        task_id if is_dns1123_label(task_id) else None for task_id in task_ids
    ]
    taken = {name for name in names if name is not None}
    for index, want in enumerate(wanted):
        if names[index] is not None:
            continue
        name = want
        counter = 2
        while name in taken:
            suffix = f"-{counter}"
            name = want[: MAX_LABEL - len(suffix)].rstrip("-") + suffix
            counter += 1
        names[index] = name
        taken.add(name)
    return [name for name in names if name is not None]


# --- The earlier format ------------------------------------------------------------------


def _number_as_text(value: Any) -> Any:
    """YAML makes `taskId: 1` an int and `version: 1.0` a float: take them as their text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _version_as_text(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return _number_as_text(value)


IdText = Annotated[str, BeforeValidator(_number_as_text), StringConstraints(min_length=1)]
VersionText = Annotated[str, BeforeValidator(_version_as_text)]


class _LegacyModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid"
    )


class LegacyTask(_LegacyModel):
    """One task of the chain, as the earlier Ops-Core defined it."""

    task_id: IdText
    name: str = Field(min_length=1, max_length=253)
    agent_capability: str = Field(min_length=1, max_length=253)
    parameters: dict[str, Any] = Field(default_factory=dict)
    next_task_id: IdText | None = None


class LegacyWorkflow(_LegacyModel):
    """A workflow definition of the earlier Ops-Core (validated as a single chain)."""

    id: IdText
    name: str
    description: str | None = None
    version: VersionText = "1.0"
    tasks: list[LegacyTask] = Field(min_length=1, max_length=MAX_STEPS)


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field (the earlier format has no such field)"
    if kind in ("too_short", "string_too_short") and error.get("input") == "":
        return "must not be empty"
    if kind == "too_short" and error["loc"] == ("tasks",):
        return "a workflow needs at least one task"
    if kind == "too_long" and error["loc"] == ("tasks",):
        return f"more than {MAX_STEPS} tasks (a WorkflowTemplate holds at most {MAX_STEPS} steps)"
    return error["msg"]


def _from_validation_error(exc: ValidationError, prefix: str = "") -> LegacyImportError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    reason = _reason(first)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    path = _path(first["loc"])
    return LegacyImportError(f"{prefix}{path}" if prefix and path else prefix or path, reason)


def parse_legacy(text: str) -> LegacyWorkflow:
    """Read a legacy definition from JSON or YAML text and validate it (see module doc)."""
    try:
        data: Any = json.loads(text)
    except ValueError as json_error:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            if text.lstrip().startswith(("{", "[")):  # meant as JSON: its error is clearer
                raise LegacyImportError("", f"not valid JSON: {json_error}") from None
            problem = " ".join(str(exc).split())
            raise LegacyImportError("", f"neither JSON nor YAML: {problem}") from None
    return validate_legacy(data)


def validate_legacy(data: object) -> LegacyWorkflow:
    """Validate parsed data as a legacy definition; raises LegacyImportError naming the field."""
    if not isinstance(data, Mapping):
        raise LegacyImportError(
            "", f"expected an object with id, name, version and tasks, got {_kind(data)}"
        )
    try:
        workflow = LegacyWorkflow.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    for index, task in enumerate(workflow.tasks):
        _check_parameters(task.parameters, f"tasks[{index}].parameters")
    chain(workflow)
    return workflow


def _kind(value: object) -> str:
    if value is None:
        return "nothing (empty document)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _check_parameters(value: Any, path: str) -> None:
    """Parameters must be JSON and free of `{{ }}`, which Ops-Core would render."""
    if isinstance(value, str):
        if references(value):
            raise LegacyImportError(
                path,
                f"{value!r} contains '{{{{ ... }}}}', which Ops-Core renders as a reference "
                "while the earlier Ops-Core sent it as text; there is no way to escape it, "
                "so rewrite the value before importing",
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LegacyImportError(f"{path}.{key}", "keys must be strings (JSON objects)")
            _check_parameters(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_parameters(item, f"{path}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise LegacyImportError(path, f"{value} is not a JSON number")
    elif value is not None and not isinstance(value, bool | int | float):
        raise LegacyImportError(
            path, f"a {type(value).__name__} is not a JSON value (quote it to keep it as text)"
        )


def null_parameters(workflow: LegacyWorkflow) -> list[str]:
    """Paths of parameters whose value is null inside an object, e.g. `tasks[1].parameters.x`.

    The manifest keeps them, but client-side `kubectl apply` deletes null-valued keys before
    creating the object (null means "remove" in its patches), so the agent would get the key
    missing rather than null. `kubectl apply --server-side` and `kubectl create` keep them;
    the CLI warns so the user can pick one.
    """
    found: list[str] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if item is None:
                    found.append(f"{path}.{key}")
                visit(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]")

    for index, task in enumerate(workflow.tasks):
        visit(task.parameters, f"tasks[{index}].parameters")
    return found


def chain(workflow: LegacyWorkflow) -> list[int]:
    """Indexes into `workflow.tasks` in chain order; raises if the tasks are not one chain."""
    tasks = workflow.tasks
    index_of: dict[str, int] = {}
    for index, task in enumerate(tasks):
        if task.task_id in index_of:
            raise LegacyImportError(
                f"tasks[{index}].taskId",
                f"{task.task_id!r} is already the taskId of tasks[{index_of[task.task_id]}]",
            )
        index_of[task.task_id] = index
    for index, task in enumerate(tasks):
        if task.next_task_id is not None and task.next_task_id not in index_of:
            raise LegacyImportError(
                f"tasks[{index}].nextTaskId",
                f"{task.next_task_id!r} is not a taskId in this workflow",
            )
    named = {task.next_task_id for task in tasks if task.next_task_id is not None}
    heads = [index for index, task in enumerate(tasks) if task.task_id not in named]
    if not heads:
        cycle = _walk(tasks, index_of, 0)
        raise LegacyImportError(
            "tasks", f"every task follows another, so there is no first task: {cycle}"
        )
    if len(heads) > 1:
        listed = ", ".join(f"tasks[{i}] ({tasks[i].task_id!r})" for i in heads)
        raise LegacyImportError(
            "tasks",
            f"more than one chain head (tasks no nextTaskId points to): {listed}; "
            "the earlier format is a single chain, so link them with nextTaskId",
        )
    order: list[int] = []
    seen: set[int] = set()
    current: int | None = heads[0]
    while current is not None:
        order.append(current)
        seen.add(current)
        following = tasks[current].next_task_id
        current = None if following is None else index_of[following]
        if current is not None and current in seen:
            raise LegacyImportError(
                f"tasks[{order[-1]}].nextTaskId",
                f"{tasks[current].task_id!r} leads back to an earlier task, a cycle: "
                f"{_walk(tasks, index_of, current)}",
            )
    missing = [index for index in range(len(tasks)) if index not in seen]
    if missing:
        first = missing[0]
        raise LegacyImportError(
            f"tasks[{first}]",
            f"{tasks[first].task_id!r} is not reachable from the first task "
            f"{tasks[heads[0]].task_id!r}; it is on a cycle: {_walk(tasks, index_of, first)}",
        )
    return order


def _walk(tasks: Sequence[LegacyTask], index_of: Mapping[str, int], start: int) -> str:
    """The cycle reached by following nextTaskId from `start`, as `'a' -> 'b' -> 'a'`."""
    path: list[int] = []
    current: int | None = start
    while current is not None and current not in path:
        path.append(current)
        following = tasks[current].next_task_id
        current = None if following is None else index_of[following]
    if current is None:  # pragma: no cover - callers only walk from tasks on a cycle
        return " -> ".join(repr(tasks[i].task_id) for i in path)
    loop = [*path[path.index(current) :], current]
    return " -> ".join(repr(tasks[i].task_id) for i in loop)


# --- Manifests ---------------------------------------------------------------------------

_STEP_FIELD_TO_LEGACY = {"task": "name", "capabilities": "agentCapability"}


def template_manifest(workflow: LegacyWorkflow, *, namespace: str | None = None) -> dict[str, Any]:
    """The WorkflowTemplate for a validated legacy workflow, as a JSON-ready dict."""
    order = chain(workflow)
    tasks = [workflow.tasks[index] for index in order]
    names = step_names([task.task_id for task in tasks])
    steps: list[dict[str, Any]] = []
    for position, (task, name) in enumerate(zip(tasks, names, strict=True)):
        steps.append(
            {
                "name": name,
                "task": task.name,
                "capabilities": [task.agent_capability],
                "parameters": task.parameters,
                "dependsOn": [names[position - 1]] if position else [],
                "retries": {"limit": LEGACY_RETRIES},
            }
        )
    spec: dict[str, Any] = {}
    description = ": ".join(part for part in (workflow.name, workflow.description) if part)
    if description:
        spec["description"] = description
    spec["steps"] = steps
    try:
        model = WorkflowTemplateSpec.model_validate(spec)
    except ValidationError as exc:
        raise _spec_error(exc, order) from None
    problems = graph_problems(model.steps)
    if problems:  # pragma: no cover - the chain checks above make this unreachable
        raise LegacyImportError("tasks", "; ".join(problems))
    metadata: dict[str, Any] = {"name": template_name(workflow.id)}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["annotations"] = {
        LEGACY_ID_ANNOTATION: workflow.id,
        LEGACY_VERSION_ANNOTATION: workflow.version,
        LEGACY_RETRIES_ANNOTATION: RETRIES_NOTE,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowTemplate",
        "metadata": metadata,
        "spec": model.model_dump(mode="json", by_alias=True, exclude_unset=True),
    }


def _spec_error(exc: ValidationError, order: Sequence[int]) -> LegacyImportError:
    """Point a WorkflowTemplate validation error back at the legacy field it came from."""
    error = exc.errors(include_url=False)[0]
    loc = error["loc"]
    where = f"(WorkflowTemplate spec.{_path(loc)})"
    if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int):
        field = str(loc[2])
        legacy = f"tasks[{order[loc[1]]}].{_STEP_FIELD_TO_LEGACY.get(field, field)}"
        return LegacyImportError(legacy, f"{_reason(error)} {where}")
    if loc and loc[0] == "description":
        return LegacyImportError("name/description", f"{_reason(error)} {where}")
    return LegacyImportError(f"WorkflowTemplate spec.{_path(loc)}", _reason(error))


def workflow_manifest(
    name: str,
    template: str,
    *,
    inputs: Mapping[str, Any] | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A Workflow that runs WorkflowTemplate `template` with `inputs`."""
    if not is_dns1123_subdomain(name):
        raise LegacyImportError(
            "workflow name",
            f"{name!r} is not a valid Kubernetes name (lowercase letters, digits, '-' and "
            "'.', starting and ending with a letter or digit, at most 253 characters)",
        )
    spec: dict[str, Any] = {"templateRef": {"name": template}}
    if inputs:
        spec["inputs"] = dict(inputs)
    try:
        model = WorkflowSpec.model_validate(spec)
    except ValidationError as exc:
        raise _from_validation_error(exc, prefix="Workflow spec.") from None
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": metadata,
        "spec": model.model_dump(mode="json", by_alias=True, exclude_unset=True),
    }


def to_manifests(
    workflow: LegacyWorkflow,
    *,
    namespace: str | None = None,
    workflow_name: str | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The WorkflowTemplate for `workflow`, then a Workflow running it if `workflow_name`."""
    if namespace is not None and not is_dns1123_label(namespace):
        raise LegacyImportError("namespace", f"{namespace!r} is not a valid namespace name")
    if inputs and workflow_name is None:
        raise LegacyImportError("inputs", "inputs are given to a Workflow; name one too")
    template = template_manifest(workflow, namespace=namespace)
    manifests = [template]
    if workflow_name is not None:
        manifests.append(
            workflow_manifest(
                workflow_name,
                template["metadata"]["name"],
                inputs=inputs,
                namespace=namespace,
            )
        )
    return manifests


def convert(
    text: str,
    *,
    namespace: str | None = None,
    workflow_name: str | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Legacy JSON/YAML text to manifests (`parse_legacy`, then `to_manifests`)."""
    return to_manifests(
        parse_legacy(text), namespace=namespace, workflow_name=workflow_name, inputs=inputs
    )
