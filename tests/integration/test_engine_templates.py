"""Feature 6 of the engine: a Workflow runs a WorkflowTemplate with parameters; a missing
required parameter fails it clearly; the template may be applied after the workflow."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import (
    agents_ready,
    apply,
    options_from,
    received_for,
    step,
    steps_of,
    wait_event,
    wait_finished,
    wait_workflow,
    workflow,
)
from engine_support import template as workflow_template

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

AGENTS = ("researcher", "writer")


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=("researcher:research", "writer:writing")))


def weekly_report() -> dict[str, Any]:
    return workflow_template(
        "weekly-report",
        step("research", capabilities=["research"], parameters={"subject": "{{ inputs.subject }}"}),
        step(
            "write",
            capabilities=["writing"],
            parameters={"subject": "{{ inputs.subject }}", "audience": "{{ inputs.audience }}"},
        ),
        parameters=[
            {"name": "subject", "required": True},
            {"name": "audience", "default": "engineers"},
        ],
    )


def run_of_weekly_report(name: str, **inputs: Any) -> dict[str, Any]:
    return workflow(name, templateRef={"name": "weekly-report"}, inputs=inputs)


def test_a_workflow_from_a_template_with_inputs_succeeds(stack: OpsCoreStack) -> None:
    agents_ready(stack, AGENTS)
    apply(stack, weekly_report())
    apply(stack, run_of_weekly_report("report-1", subject="fleet health"))
    wf = wait_finished(stack, "report-1")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    assert list(steps) == ["research", "write"]
    sent = received_for(stack, steps["write"]["taskId"])
    assert sent["payload"]["parameters"] == {"subject": "fleet health", "audience": "engineers"}


def test_a_missing_required_parameter_fails_as_invalid_spec_naming_it(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, AGENTS)
    apply(stack, weekly_report())
    apply(stack, run_of_weekly_report("report-2", audience="managers"))
    wf = wait_finished(stack, "report-2")
    assert kv.phase(wf) == "Failed"
    cond = kv.condition(wf, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert "subject" in cond["message"]
    assert "missing required parameter" in cond["message"]
    event = wait_event(stack, "report-2", "InvalidSpec")
    assert event["type"] == "Warning"
    assert "subject" in event["message"]
    assert stack.sim_tasks() == {}


def test_a_template_applied_after_the_workflow_is_picked_up(stack: OpsCoreStack) -> None:
    agents_ready(stack, AGENTS)
    apply(stack, run_of_weekly_report("early", subject="ordering"))
    waiting = wait_workflow(
        stack,
        "early",
        lambda wf: (wf.get("status") or {}).get("observedGeneration") == 1,
        what="the operator to look at it",
    )
    assert kv.phase(waiting) == "Pending"
    cond = kv.condition(waiting, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("Unknown", "TemplateNotFound")
    assert "waiting for WorkflowTemplate 'weekly-report'" in cond["message"]

    apply(stack, weekly_report())
    wf = wait_finished(stack, "early")
    assert kv.phase(wf) == "Succeeded"
    assert list(steps_of(wf)) == ["research", "write"]
