"""References between inputs, steps and parameters; `when` conditions; template resolution."""

from __future__ import annotations

from typing import Any

import pytest
from engine_harness import spec, step

from opscore_logic.templates import resolve
from opscore_logic.templating import Scope, TemplateError, evaluate_condition, references, render
from opscore_logic.workflow_model import (
    TemplateParameter,
    TemplateRef,
    WorkflowSpec,
    WorkflowTemplateSpec,
)

SCOPE = Scope(
    inputs={"env": "prod", "count": 3, "flags": {"fast": True}, "hosts": ["a", "b"]},
    step_outputs={"probe": {"ok": True, "n": 2, "name": "db"}, "skipped": None},
    step_phases={"probe": "Succeeded", "skipped": "Skipped"},
    workflow={"name": "wf", "namespace": "ns", "uid": "u-1"},
)


# -- render --------------------------------------------------------------------------------


def test_a_whole_string_reference_keeps_the_value_type() -> None:
    assert render("{{ inputs.count }}", SCOPE) == 3
    assert render("{{ steps.probe.output.ok }}", SCOPE) is True
    assert render("{{inputs.flags}}", SCOPE) == {"fast": True}


def test_a_reference_inside_text_is_rendered_as_text() -> None:
    assert render("n={{ inputs.count }} on {{ inputs.env }}", SCOPE) == "n=3 on prod"
    assert render("flags: {{ inputs.flags }}", SCOPE) == 'flags: {"fast": true}'


def test_references_render_inside_nested_objects_and_lists() -> None:
    value = {"a": ["{{ inputs.env }}", {"b": "{{ steps.probe.output.n }}"}], "c": 5}
    assert render(value, SCOPE) == {"a": ["prod", {"b": 2}], "c": 5}


def test_list_items_are_reached_by_index() -> None:
    assert render("{{ inputs.hosts.1 }}", SCOPE) == "b"


def test_a_whole_step_output_can_be_passed_on() -> None:
    assert render("{{ steps.probe.output }}", SCOPE) == {"ok": True, "n": 2, "name": "db"}


def test_a_step_phase_can_be_read() -> None:
    assert render("{{ steps.skipped.phase }}", SCOPE) == "Skipped"


def test_workflow_identity_can_be_read() -> None:
    assert render("{{ workflow.name }}/{{ workflow.namespace }}", SCOPE) == "wf/ns"


def test_text_without_references_is_left_alone() -> None:
    assert render("plain {not a ref}", SCOPE) == "plain {not a ref}"
    assert render(7, SCOPE) == 7


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{{ inputs.missing }}", "inputs.missing: 'missing' not found"),
        ("{{ steps.nope.output.x }}", "steps.nope.output.x: no step named 'nope'"),
        ("{{ steps.skipped.output.x }}", "steps.skipped.output.x: step 'skipped' has no output"),
        ("{{ steps.probe.output.zzz }}", "steps.probe.output.zzz: 'zzz' not found"),
        ("{{ inputs.hosts.9 }}", "inputs.hosts.9: '9' not found"),
        ("{{ secrets.token }}", "secrets.token: unknown reference"),
    ],
)
def test_an_unresolvable_reference_raises_an_error_naming_it(text: str, problem: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render({"k": [text]}, SCOPE)
    assert str(caught.value).startswith(problem)


def test_references_lists_every_reference_used() -> None:
    value = {"a": "{{ inputs.x }} and {{steps.s.output.y}}", "b": ["{{ workflow.uid }}"], "c": 1}
    assert references(value) == {"inputs.x", "steps.s.output.y", "workflow.uid"}


# -- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("inputs.env == prod", True),
        ("inputs.env == 'prod'", True),
        ('inputs.env != "prod"', False),
        ("inputs.env==prod", True),
        ("inputs.count == 3", True),
        ("inputs.count == '3'", False),
        ("steps.probe.output.ok == true", True),
        ("steps.probe.output.ok", True),
        ("!steps.probe.output.ok", False),
        ("steps.probe.phase == Succeeded", True),
        ("{{ steps.probe.output.n }} == 2", True),
        ("inputs.env == prod && inputs.count == 4", False),
        ("inputs.env == dev || inputs.count == 3", True),
        ("inputs.flags.fast", True),
        ("null == null", True),
    ],
)
def test_conditions_compare_references_with_literals(condition: str, expected: bool) -> None:
    assert evaluate_condition(condition, SCOPE) is expected


def test_an_empty_condition_is_an_error() -> None:
    with pytest.raises(TemplateError, match="empty condition"):
        evaluate_condition("  ", SCOPE)


def test_a_condition_on_a_missing_output_is_an_error() -> None:
    with pytest.raises(TemplateError, match="has no output"):
        evaluate_condition("steps.skipped.output.x == 1", SCOPE)


# -- resolving a workflow's steps ----------------------------------------------------------


TEMPLATE = WorkflowTemplateSpec(
    parameters=[
        TemplateParameter(name="subject", required=True),
        TemplateParameter(name="audience", default="engineers"),
    ],
    steps=[
        step("research", parameters={"s": "{{ inputs.subject }}"}),
        step("write", parameters={"s": "{{ inputs.subject }}", "a": "{{ inputs.audience }}"}),
    ],
)


def from_template(**inputs: Any) -> WorkflowSpec:
    return WorkflowSpec(template_ref=TemplateRef(name="weekly"), inputs=inputs)


def test_inline_steps_resolve_to_themselves_with_the_spec_inputs() -> None:
    wf = spec(step("a", parameters={"x": "{{ inputs.x }}"}), inputs={"x": 1})
    resolved = resolve(wf, None)
    assert resolved.error is None
    assert resolved.steps == wf.steps
    assert resolved.inputs == {"x": 1}


def test_template_defaults_fill_inputs_the_workflow_does_not_give() -> None:
    resolved = resolve(from_template(subject="fleet"), TEMPLATE)
    assert resolved.error is None
    assert resolved.inputs == {"subject": "fleet", "audience": "engineers"}
    assert [s.name for s in resolved.steps or []] == ["research", "write"]


def test_workflow_inputs_override_template_defaults() -> None:
    resolved = resolve(from_template(subject="fleet", audience="execs"), TEMPLATE)
    assert resolved.inputs["audience"] == "execs"


def test_a_missing_required_parameter_is_named() -> None:
    resolved = resolve(from_template(), TEMPLATE)
    assert resolved.steps is None
    assert resolved.error == "missing required parameter(s) of template 'weekly': subject"


def test_a_missing_template_is_named() -> None:
    assert resolve(from_template(), None).error == "WorkflowTemplate 'weekly' not found"


def test_neither_steps_nor_template_is_an_error() -> None:
    assert resolve(WorkflowSpec(), None).error == "set exactly one of steps and templateRef"


def test_an_unknown_input_in_parameters_is_named() -> None:
    wf = spec(step("a", parameters={"q": ["{{ inputs.query }}"]}))
    assert resolve(wf, None).error == "reference(s) to unknown input(s): inputs.query"


def test_an_unknown_input_in_a_condition_is_named() -> None:
    wf = spec(step("a", when="inputs.mode == full"))
    assert resolve(wf, None).error == "reference(s) to unknown input(s): inputs.mode"


def test_a_condition_without_spaces_is_read_correctly() -> None:
    wf = spec(step("a", when="inputs.mode==full&&!inputs.dry"), inputs={"mode": "x", "dry": 1})
    assert resolve(wf, None).error is None


def test_a_braced_reference_in_a_condition_is_checked() -> None:
    wf = spec(step("a", when="{{inputs.mode}} == full"))
    assert resolve(wf, None).error == "reference(s) to unknown input(s): inputs.mode"


def test_an_unknown_step_in_parameters_is_named() -> None:
    wf = spec(step("a", parameters={"q": "{{ steps.nope.output.x }}"}))
    assert resolve(wf, None).error == "reference(s) to unknown step(s): steps.nope.output.x"


def test_an_unknown_step_in_a_condition_is_named() -> None:
    wf = spec(step("a", when="steps.nope.phase == Succeeded"))
    assert resolve(wf, None).error == "reference(s) to unknown step(s): steps.nope.phase"


def test_reading_a_step_that_does_not_run_first_is_named() -> None:
    wf = spec(
        step("a", after=[]),
        step("b", after=[], parameters={"x": "{{ steps.a.output.x }}"}),
    )
    assert resolve(wf, None).error == (
        "step 'b' reads steps.a.output.x but does not run after 'a' (add it to dependsOn)"
    )


def test_reading_an_indirect_upstream_step_is_fine() -> None:
    wf = spec(step("a"), step("b"), step("c", parameters={"x": "{{ steps.a.output.x }}"}))
    assert resolve(wf, None).error is None


def test_an_unknown_workflow_field_is_named() -> None:
    wf = spec(step("a", parameters={"x": "{{ workflow.labels }}"}))
    error = resolve(wf, None).error or ""
    assert error.startswith("unknown workflow field(s): workflow.labels")


def test_an_unknown_kind_of_reference_is_named() -> None:
    wf = spec(step("a", parameters={"x": "{{ secrets.token }}"}))
    error = resolve(wf, None).error or ""
    assert error.startswith("unknown reference(s): secrets.token")


def test_a_step_field_other_than_output_or_phase_is_named() -> None:
    wf = spec(step("a"), step("b", parameters={"x": "{{ steps.a.status }}"}))
    error = resolve(wf, None).error or ""
    assert error.startswith("unknown reference(s): steps.a.status")


def test_a_template_referencing_an_unknown_parameter_is_named() -> None:
    template = WorkflowTemplateSpec(steps=[step("a", parameters={"x": "{{ inputs.ghost }}"})])
    assert resolve(from_template(), template).error == (
        "reference(s) to unknown input(s): inputs.ghost"
    )
