"""Feature 8 of the engine: bad input. What the CRD schema and CEL rules can reject, the
API server rejects; what they cannot (cycles, unknown references), the operator marks
Failed/InvalidSpec with a message naming the problem, while it goes on serving good
workflows and never crashes."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import (
    agents_ready,
    apply,
    apply_rejected,
    operator_log,
    options_from,
    step,
    steps_of,
    wait_event,
    wait_finished,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.stack import OpsCoreStack, StackOptions


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=("alpha:work", "beta:work")))


@pytest.mark.parametrize(
    ("steps", "complaint"),
    [
        (
            [step("a", agent="alpha"), step("a", agent="beta")],
            'spec.steps[1]: Duplicate value: {"name":"a"}',
        ),
        (
            [step("a", agent="alpha", capabilities=["work"])],
            "set exactly one of agent and capabilities",
        ),
        ([step("a")], "set exactly one of agent and capabilities"),
        (
            [step("a", agent="alpha", timeoutSeconds=-5)],
            "timeoutSeconds: Invalid value: -5: spec.steps[0].timeoutSeconds in body should be "
            "greater than or equal to 1",
        ),
        (
            [step("a", agent="alpha", retries={"limit": -1})],
            "should be greater than or equal to 0",
        ),
        (
            [step("a", agent="alpha", dependsOn=["a"])],
            "a step cannot depend on itself",
        ),
        ([step("Not_A_Label", agent="alpha")], "spec.steps[0].name in body should match"),
    ],
    ids=[
        "duplicate-step-names",
        "agent-and-capabilities",
        "neither-agent-nor-capabilities",
        "negative-timeout",
        "negative-retry-limit",
        "self-dependency",
        "step-name-not-a-dns-label",
    ],
)
def test_the_api_server_rejects_what_the_schema_can_tell(
    crds: ControlPlane, namespace: str, steps: list[dict[str, Any]], complaint: str
) -> None:
    error = apply_rejected(crds, namespace, workflow("bad", *steps))
    assert "Invalid" in error or "invalid" in error
    assert complaint in error
    listed = crds.kubectl("get", "workflows", "-n", namespace, "-o", "name").stdout
    assert listed.strip() == ""


def test_the_api_server_rejects_both_steps_and_a_template_ref(
    crds: ControlPlane, namespace: str
) -> None:
    error = apply_rejected(
        crds,
        namespace,
        workflow("both", step("a", agent="alpha"), templateRef={"name": "weekly"}),
    )
    assert "set exactly one of steps and templateRef" in error


@pytest.mark.parametrize(
    ("steps", "inputs", "problem"),
    [
        (
            [
                step("a", agent="alpha", dependsOn=["c"]),
                step("b", agent="alpha", dependsOn=["a"]),
                step("c", agent="alpha", dependsOn=["b"]),
            ],
            {},
            "dependsOn has a cycle: a -> c -> b -> a",
        ),
        (
            [step("a", agent="alpha"), step("b", agent="alpha", dependsOn=["ghost"])],
            {},
            "step 'b' depends on unknown step 'ghost'",
        ),
        (
            [step("a", agent="alpha", parameters={"url": "{{ inputs.nope }}"})],
            {"url": "https://example.org"},
            "reference(s) to unknown input(s): inputs.nope",
        ),
        (
            [
                step("a", agent="alpha"),
                step("b", agent="alpha", parameters={"x": "{{ steps.ghost.output.y }}"}),
            ],
            {},
            "reference(s) to unknown step(s): steps.ghost.output.y",
        ),
    ],
    ids=["dependency-cycle", "unknown-dependency", "unknown-input", "unknown-step-output"],
)
def test_the_operator_fails_what_the_schema_cannot_tell_and_keeps_serving(
    stack: OpsCoreStack, steps: list[dict[str, Any]], inputs: dict[str, Any], problem: str
) -> None:
    agents_ready(stack, ("alpha", "beta"))
    apply(
        stack,
        workflow("bad", *steps, inputs=inputs),
        workflow("good", step("fine", capabilities=["work"])),
    )
    bad = wait_finished(stack, "bad")
    assert kv.phase(bad) == "Failed"
    cond = kv.condition(bad, "Succeeded")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert problem in cond["message"]
    assert problem in bad["status"]["message"]
    assert all("taskId" not in s for s in steps_of(bad).values()), "nothing was dispatched"
    event = wait_event(stack, "bad", "InvalidSpec")
    assert (event["type"], problem in event["message"]) == ("Warning", True)

    good = wait_finished(stack, "good")
    assert kv.phase(good) == "Succeeded"
    assert stack.operator is not None
    assert stack.operator.is_running()
    assert "Traceback" not in operator_log(stack)
