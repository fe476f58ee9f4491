"""The importer turns earlier Ops-Core workflow definitions into valid WorkflowTemplates.

A migration tool must either reproduce a workflow faithfully or refuse with a message that
says which field to fix; these tests pin both halves, plus the naming rules that decide
which Kubernetes object an import overwrites.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from opscore_logic.graph import graph_problems
from opscore_logic.legacy import (
    LEGACY_ID_ANNOTATION,
    LEGACY_RETRIES_ANNOTATION,
    LEGACY_VERSION_ANNOTATION,
    LegacyImportError,
    convert,
    null_parameters,
    parse_legacy,
    step_names,
    template_manifest,
    template_name,
    validate_legacy,
    workflow_manifest,
)
from opscore_logic.workflow_model import WorkflowSpec, WorkflowTemplateSpec

DATA = Path(__file__).parents[1] / "data" / "legacy"
SAMPLE_JSON = DATA / "sample_workflow.json"
SAMPLE_YAML = DATA / "sample_workflow.yaml"
OUT_OF_ORDER = DATA / "listed_out_of_order.yaml"

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE_JSON.read_text())
    return data


def _steps(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = manifest["spec"]["steps"]
    return steps


# --- The shared sample ---------------------------------------------------------------------


def test_shared_sample_converts_to_the_expected_template() -> None:
    [template] = convert(SAMPLE_JSON.read_text())

    assert template["apiVersion"] == "opscore.opspawn.io/v1alpha1"
    assert template["kind"] == "WorkflowTemplate"
    assert template["metadata"]["name"] == "sample-workflow-id"
    assert "namespace" not in template["metadata"]
    annotations = template["metadata"]["annotations"]
    assert annotations[LEGACY_ID_ANNOTATION] == "sample_workflow_id"
    assert annotations[LEGACY_VERSION_ANNOTATION] == "1.0"
    assert "retries.limit=3" in annotations[LEGACY_RETRIES_ANNOTATION]
    assert template["spec"] == {
        "description": "Sample Load Test Workflow: A simple workflow for performance testing.",
        "steps": [
            {
                "name": "step-1",
                "capabilities": ["test_capability"],
                "task": "First Step",
                "parameters": {"message": "This is the first step."},
                "dependsOn": [],
                "retries": {"limit": 3},
            },
            {
                "name": "step-2",
                "capabilities": ["another_capability"],
                "task": "Second Step",
                "parameters": {"value": 123},
                "dependsOn": ["step-1"],
                "retries": {"limit": 3},
            },
        ],
    }


def test_converted_template_passes_the_model_and_graph_checks() -> None:
    [template] = convert(SAMPLE_JSON.read_text())
    spec = WorkflowTemplateSpec.model_validate(template["spec"])
    assert graph_problems(spec.steps) == []
    assert [s.retries.limit for s in spec.steps if s.retries] == [3, 3]


def test_the_yaml_copy_of_the_sample_is_the_same_document_as_the_json_one() -> None:
    """The YAML test below compares the importer's output for the two copies; that says
    something only while they hold the same definition (a chain of two tasks). The one
    intended difference: YAML reads the unquoted `version: 1.0` as a float."""
    sample = _sample()
    written_as_yaml = yaml.safe_load(SAMPLE_YAML.read_text())
    assert written_as_yaml["version"] == 1.0
    assert {**written_as_yaml, "version": sample["version"]} == sample
    assert [t["nextTaskId"] for t in sample["tasks"]] == ["step_2", None]


# --- YAML input and chain order ----------------------------------------------------------


def test_yaml_input_gives_the_same_manifest_as_json() -> None:
    assert convert(SAMPLE_YAML.read_text()) == convert(SAMPLE_JSON.read_text())


def test_steps_follow_the_chain_not_the_list() -> None:
    [template] = convert(OUT_OF_ORDER.read_text())

    assert template["metadata"]["name"] == "nightly.report-pipeline"
    assert template["metadata"]["annotations"][LEGACY_ID_ANNOTATION] == "Nightly.Report_Pipeline"
    assert template["metadata"]["annotations"][LEGACY_VERSION_ANNOTATION] == "2"
    assert template["spec"]["description"] == "Nightly report"
    steps = _steps(template)
    assert [s["name"] for s in steps] == ["10", "20", "30"]
    assert [s["task"] for s in steps] == ["collect", "summarise", "publish"]
    assert [s["capabilities"] for s in steps] == [["data_collection"], ["writing"], ["publishing"]]
    assert [s["dependsOn"] for s in steps] == [[], ["10"], ["20"]]
    assert steps[0]["parameters"] == {}
    assert steps[1]["parameters"] == {
        "style": "short",
        "maxWords": 200,
        "draft": False,
        "extra": None,
    }
    assert steps[2]["parameters"] == {"channel": "#reports", "targets": ["wiki", "mail"]}


def test_namespace_is_set_on_every_manifest() -> None:
    manifests = convert(SAMPLE_JSON.read_text(), namespace="team-a", workflow_name="run-1")
    assert [m["metadata"]["namespace"] for m in manifests] == ["team-a", "team-a"]


def test_workflow_references_the_template_with_inputs() -> None:
    template, workflow = convert(
        SAMPLE_JSON.read_text(), workflow_name="load-test-1", inputs={"size": "10"}
    )
    assert workflow["kind"] == "Workflow"
    assert workflow["metadata"] == {"name": "load-test-1"}
    assert workflow["spec"] == {
        "templateRef": {"name": template["metadata"]["name"]},
        "inputs": {"size": "10"},
    }
    WorkflowSpec.model_validate(workflow["spec"])


def test_workflow_without_inputs_has_no_inputs_field() -> None:
    workflow = workflow_manifest("run", "tpl")
    assert workflow["spec"] == {"templateRef": {"name": "tpl"}}


def test_workflow_name_must_be_a_kubernetes_name() -> None:
    with pytest.raises(LegacyImportError, match=r"^workflow name: 'Run_1' is not a valid"):
        workflow_manifest("Run_1", "tpl")


def test_inputs_without_a_workflow_are_refused() -> None:
    with pytest.raises(LegacyImportError, match=r"^inputs: "):
        convert(SAMPLE_JSON.read_text(), inputs={"a": "b"})


def test_parameters_are_copied_verbatim_including_nesting() -> None:
    data = _sample()
    nested = {"a": [1, 2.5, {"b": None}], "c": {"d": True}, "unicode": "café ✓"}
    data["tasks"][0]["parameters"] = copy.deepcopy(nested)
    template = template_manifest(validate_legacy(data))
    assert _steps(template)[0]["parameters"] == nested


# --- Validation errors -------------------------------------------------------------------


def _tasks(*links: tuple[Any, Any]) -> dict[str, Any]:
    """A workflow whose tasks are (taskId, nextTaskId) pairs, in the given list order."""
    return {
        "id": "wf",
        "name": "WF",
        "version": "1",
        "tasks": [
            {"taskId": t, "name": f"do {t}", "agentCapability": "cap", "nextTaskId": n}
            for t, n in links
        ],
    }


def _mutated(path: str, value: Any) -> dict[str, Any]:
    """The sample with one field replaced (value ...) or deleted (value is DELETE)."""
    data = _sample()
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return data


DELETE = object()

ERRORS: list[tuple[str, Any, str]] = [
    ("missing tasks", _mutated("tasks", DELETE), "tasks: is required"),
    ("empty tasks", _mutated("tasks", []), "tasks: a workflow needs at least one task"),
    ("tasks not a list", _mutated("tasks", {"a": 1}), "tasks: Input should be a valid list"),
    ("missing id", _mutated("id", DELETE), "id: is required"),
    ("empty id", _mutated("id", ""), "id: must not be empty"),
    ("name not a string", _mutated("name", 5), "name: Input should be a valid string"),
    (
        "empty agentCapability",
        _mutated("tasks.0.agentCapability", ""),
        "tasks[0].agentCapability: must not be empty",
    ),
    (
        "task name not a string",
        _mutated("tasks.1.name", ["x"]),
        "tasks[1].name: Input should be a valid string",
    ),
    (
        "missing agentCapability",
        _mutated("tasks.0.agentCapability", DELETE),
        "tasks[0].agentCapability: is required",
    ),
    (
        "parameters not an object",
        _mutated("tasks.0.parameters", ["a"]),
        "tasks[0].parameters: Input should be a valid dictionary",
    ),
    (
        "taskId a boolean",
        _mutated("tasks.0.taskId", True),
        "tasks[0].taskId: Input should be a valid string",
    ),
    (
        "unknown field",
        _mutated("tasks.1.retries", 5),
        "tasks[1].retries: unknown field (the earlier format has no such field)",
    ),
    (
        "duplicate taskId",
        _tasks(("a", "b"), ("b", None), ("a", None)),
        "tasks[2].taskId: 'a' is already the taskId of tasks[0]",
    ),
    (
        "nextTaskId pointing nowhere",
        _mutated("tasks.1.nextTaskId", "step_9"),
        "tasks[1].nextTaskId: 'step_9' is not a taskId in this workflow",
    ),
    (
        "task pointing at itself",
        _tasks(("h", "a"), ("a", "a")),
        "tasks[1].nextTaskId: 'a' leads back to an earlier task, a cycle: 'a' -> 'a'",
    ),
    (
        "cycle after the head",
        _tasks(("h", "a"), ("a", "b"), ("b", "a")),
        "tasks[2].nextTaskId: 'a' leads back to an earlier task, a cycle: 'a' -> 'b' -> 'a'",
    ),
    (
        "every task in a cycle",
        _tasks(("a", "b"), ("b", "c"), ("c", "a")),
        "tasks: every task follows another, so there is no first task: 'a' -> 'b' -> 'c' -> 'a'",
    ),
    (
        "unreachable cycle",
        _tasks(("h", None), ("x", "y"), ("y", "x")),
        "tasks[1]: 'x' is not reachable from the first task 'h'; it is on a cycle: "
        "'x' -> 'y' -> 'x'",
    ),
    (
        "two chains",
        _tasks(("a", "b"), ("b", None), ("c", None)),
        "tasks: more than one chain head (tasks no nextTaskId points to): "
        "tasks[0] ('a'), tasks[2] ('c'); the earlier format is a single chain, "
        "so link them with nextTaskId",
    ),
    (
        "two tasks before one",
        _tasks(("a", "c"), ("b", "c"), ("c", None)),
        "tasks: more than one chain head (tasks no nextTaskId points to): "
        "tasks[0] ('a'), tasks[1] ('b'); the earlier format is a single chain, "
        "so link them with nextTaskId",
    ),
    (
        "template reference in parameters",
        _mutated("tasks.0.parameters", {"msg": {"text": "hi {{ user }}"}}),
        "tasks[0].parameters.msg.text: 'hi {{ user }}' contains '{{ ... }}', which Ops-Core "
        "renders as a reference while the earlier Ops-Core sent it as text; there is no way "
        "to escape it, so rewrite the value before importing",
    ),
    (
        "NaN parameter",
        _mutated("tasks.0.parameters", {"x": [float("nan")]}),
        "tasks[0].parameters.x[0]: nan is not a JSON number",
    ),
    (
        "too many tasks",
        _tasks(*[(f"t{i}", f"t{i + 1}" if i < 100 else None) for i in range(101)]),
        "tasks: more than 100 tasks (a WorkflowTemplate holds at most 100 steps)",
    ),
    (
        "task name too long for the template",
        _mutated("tasks.1.name", "x" * 254),
        "tasks[1].name: String should have at most 253 characters",
    ),
    (
        "description too long for the template",
        _mutated("description", "d" * 4096),
        "name/description: String should have at most 4096 characters "
        "(WorkflowTemplate spec.description)",
    ),
    (
        "top level a list",
        [_sample()],
        "expected an object with id, name, version and tasks, got a list",
    ),
]


@pytest.mark.parametrize(("data", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_invalid_definitions_are_refused_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(LegacyImportError) as caught:
        template_manifest(validate_legacy(data))
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_several_structural_problems_report_the_first_and_a_count() -> None:
    data = _sample()
    del data["tasks"][0]["name"]
    del data["tasks"][1]["name"]
    with pytest.raises(LegacyImportError) as caught:
        validate_legacy(data)
    assert str(caught.value) == "tasks[0].name: is required (and 1 more problem)"


def test_error_carries_path_and_reason_separately() -> None:
    with pytest.raises(LegacyImportError) as caught:
        validate_legacy(_mutated("tasks.1.nextTaskId", "step_9"))
    assert caught.value.path == "tasks[1].nextTaskId"
    assert caught.value.reason == "'step_9' is not a taskId in this workflow"


def test_yaml_date_in_parameters_is_refused() -> None:
    text = SAMPLE_YAML.read_text().replace("value: 123", "value: 2024-01-31")
    with pytest.raises(LegacyImportError, match=r"^tasks\[1\]\.parameters\.value: a date "):
        parse_legacy(text)


def test_text_that_is_neither_json_nor_yaml_is_refused() -> None:
    with pytest.raises(LegacyImportError, match=r"^neither JSON nor YAML: ") as caught:
        parse_legacy("tasks: [unclosed")
    assert "\n" not in str(caught.value)


def test_broken_json_reports_the_json_error() -> None:
    text = SAMPLE_JSON.read_text().replace('"step_2",', '"step_2"', 1)
    with pytest.raises(LegacyImportError, match=r"^not valid JSON: .*line \d+ column \d+"):
        parse_legacy(text)


def test_empty_document_is_refused() -> None:
    with pytest.raises(LegacyImportError, match="got nothing"):
        parse_legacy("")


def test_missing_version_defaults_like_the_earlier_ops_core() -> None:
    [template] = convert(json.dumps(_mutated("version", DELETE)))
    assert template["metadata"]["annotations"][LEGACY_VERSION_ANNOTATION] == "1.0"


def test_invalid_namespace_is_refused() -> None:
    with pytest.raises(LegacyImportError, match=r"^namespace: 'Team_A' is not a valid"):
        convert(SAMPLE_JSON.read_text(), namespace="Team_A")


# --- Names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("legacy_id", "name"),
    [
        ("sample_workflow_id", "sample-workflow-id"),
        ("already-valid.name", "already-valid.name"),
        ("My Workflow (v2)!", "my-workflow-v2"),
        ("a__b--c", "a-b-c"),
        ("-.Lead.-trail.", "lead.trail"),
        ("___", "legacy-workflow"),
        ("日本語", "legacy-workflow"),
        ("x" * 300, "x" * 253),
    ],
)
def test_template_name_examples(legacy_id: str, name: str) -> None:
    assert template_name(legacy_id) == name


@given(st.text(max_size=400))
def test_template_name_is_valid_deterministic_and_idempotent(legacy_id: str) -> None:
    name = template_name(legacy_id)
    assert len(name) <= 253
    assert DNS1123_SUBDOMAIN.fullmatch(name)
    assert template_name(legacy_id) == name
    assert template_name(name) == name


@pytest.mark.parametrize(
    ("task_ids", "names"),
    [
        (["step_1", "step_2"], ["step-1", "step-2"]),
        (["step_1", "step-1"], ["step-1-2", "step-1"]),  # the valid id keeps its name
        (["a_b", "A.B", "a b"], ["a-b", "a-b-2", "a-b-3"]),  # first in chain order wins
        (["x_1", "x-1-2", "x.1"], ["x-1", "x-1-2", "x-1-3"]),  # suffixes skip taken names
        (["!!!", "?"], ["task", "task-2"]),
        (["1.0", "Deploy Prod"], ["1-0", "deploy-prod"]),
        (["y" * 70, "Y" * 70], ["y" * 63, "y" * 61 + "-2"]),
    ],
)
def test_step_name_examples(task_ids: list[str], names: list[str]) -> None:
    assert step_names(task_ids) == names


@given(st.lists(st.text(min_size=1, max_size=80), unique=True, max_size=20))
def test_step_names_are_unique_valid_and_deterministic(task_ids: list[str]) -> None:
    names = step_names(task_ids)
    assert len(names) == len(task_ids)
    assert len(set(names)) == len(names)
    assert all(len(n) <= 63 and DNS1123_LABEL.fullmatch(n) for n in names)
    assert step_names(task_ids) == names


def test_colliding_task_ids_still_make_a_valid_chain() -> None:
    [template] = convert(json.dumps(_tasks(("Step_1", "step-1"), ("step-1", None))))
    steps = _steps(template)
    assert [s["name"] for s in steps] == ["step-1-2", "step-1"]
    assert steps[1]["dependsOn"] == ["step-1-2"]


# --- Null parameters (the command line warns about them) ---------------------------------


def test_null_parameters_are_listed_for_a_warning() -> None:
    legacy = parse_legacy(OUT_OF_ORDER.read_text())
    assert null_parameters(legacy) == ["tasks[2].parameters.extra"]
    assert null_parameters(parse_legacy(SAMPLE_JSON.read_text())) == []
