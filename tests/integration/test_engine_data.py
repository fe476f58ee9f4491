"""Feature 3 of the engine: data passing. Agents that report `details.output` (the
simulator's `correlated` mode echoes the payload it got) see it in `status.steps[].output`,
and later steps' parameters referencing it reach the next agent rendered."""

from __future__ import annotations

import pytest
from engine_support import (
    agents_ready,
    apply,
    options_from,
    received_for,
    step,
    steps_of,
    wait_finished,
    workflow,
)

from opscore_testbed import kube_views as kv
from opscore_testbed.stack import OpsCoreStack, StackOptions

URL = "https://example.org/fleet.csv"


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(
        request, StackOptions(agents=("fetcher:fetch", "writer:write"), agent_mode="correlated")
    )


def test_an_agents_output_shows_in_status_and_renders_into_the_next_steps_parameters(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("fetcher", "writer"))
    apply(
        stack,
        workflow(
            "pipeline",
            step("fetch", capabilities=["fetch"], parameters={"url": "{{ inputs.url }}"}),
            step(
                "summarise",
                capabilities=["write"],
                parameters={
                    "source": "{{ steps.fetch.output.echo.parameters.url }}",
                    "fetchedBy": "{{ steps.fetch.output.agent }}",
                    "attempt": "{{ steps.fetch.output.echo.attempt }}",
                    "note": "fetched by {{ steps.fetch.output.agent }} on try "
                    "{{ steps.fetch.output.echo.attempt }}",
                },
            ),
            inputs={"url": URL},
        ),
    )
    wf = wait_finished(stack, "pipeline")
    assert kv.phase(wf) == "Succeeded"
    steps = steps_of(wf)
    output = steps["fetch"]["output"]
    assert output["agent"] == "fetcher"
    assert output["echo"]["parameters"] == {"url": URL}

    sent = received_for(stack, steps["summarise"]["taskId"])
    assert sent["agentName"] == "writer"
    assert sent["payload"]["parameters"] == {
        "source": URL,
        "fetchedBy": "fetcher",
        "attempt": 1,  # a whole-string reference keeps its type
        "note": "fetched by fetcher on try 1",
    }


def test_an_output_too_big_for_status_is_dropped_with_a_clear_message(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("fetcher", "writer"))
    apply(
        stack,
        workflow(
            "bulky",
            step("fetch", capabilities=["fetch"], parameters={"blob": "{{ inputs.blob }}"}),
            inputs={"blob": "x" * 6000},
        ),
    )
    wf = wait_finished(stack, "bulky")
    assert kv.phase(wf) == "Succeeded"
    fetch = steps_of(wf)["fetch"]
    assert fetch["output"]["truncated"] is True
    assert fetch["output"]["bytes"] > 6000
    assert "exceeds 4096 bytes and was dropped" in fetch["message"]
