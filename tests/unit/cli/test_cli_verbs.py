"""`suspend`, `resume`, `cancel`, `retry`: the spec patch, or why the verb does not apply."""

from __future__ import annotations

from typing import Any

import pytest

from opscore_cli.verbs import NotApplicable, plan


def wf(
    phase: str | None = "Running",
    rv: str = "7",
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "x", "resourceVersion": rv},
        "spec": spec,
        "status": {"phase": phase, **(status or {})} if phase else {},
    }


def test_suspend_resume_cancel_patch_their_spec_field() -> None:
    assert plan("suspend", wf()).patch == {"spec": {"suspend": True}}
    assert plan("resume", wf(suspend=True)).patch == {"spec": {"suspend": False}}
    assert plan("cancel", wf()).patch == {"spec": {"cancel": True}}
    assert plan("suspend", wf(phase=None)).done == "suspended"


def test_retry_bumps_the_generation_guarded_by_the_resource_version() -> None:
    change = plan("retry", wf("Failed", rv="42", status={"retryGeneration": 1}, retryGeneration=1))
    assert change.patch == {"metadata": {"resourceVersion": "42"}, "spec": {"retryGeneration": 2}}
    assert change.done == "retried (retryGeneration 2)"


@pytest.mark.parametrize(
    ("verb", "workflow", "message"),
    [
        ("cancel", wf("Succeeded"), 'workflow "x" already finished (Succeeded); nothing to cancel'),
        ("suspend", wf("Failed"), 'workflow "x" already finished (Failed); nothing to suspend'),
        (
            "resume",
            wf("Cancelled", suspend=True),
            "already finished (Cancelled); nothing to resume",
        ),
        ("suspend", wf(suspend=True), 'workflow "x" is already suspended'),
        ("suspend", wf(cancel=True), 'workflow "x" is being cancelled; nothing to suspend'),
        ("resume", wf(), 'workflow "x" is not suspended; nothing to resume'),
        ("cancel", wf(cancel=True), 'workflow "x" is already being cancelled'),
        ("retry", wf("Running"), 'workflow "x" is Running, not Failed; only a failed run'),
        ("retry", wf("Succeeded"), "is Succeeded, not Failed"),
        ("retry", wf(None), "is Pending, not Failed"),
        ("retry", wf("Failed", retryGeneration=1), 'a retry of workflow "x" is already requested'),
    ],
)
def test_a_verb_that_does_not_apply_says_why(
    verb: str, workflow: dict[str, Any], message: str
) -> None:
    with pytest.raises(NotApplicable, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(verb, workflow)
