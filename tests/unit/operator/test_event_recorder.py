"""Which Events the operator posts: outcomes and Warnings always, routine progress
(WorkflowRunning, StepDispatched) only when asked to, nothing at all that is Normal when
Normal Events are off."""

from __future__ import annotations

from typing import Any

from pytest_mock import MockerFixture

from opscore_operator.events import EventRecorder

BODY = {
    "apiVersion": "opscore.opspawn.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "wf", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
}


async def posted(mocker: MockerFixture, **options: Any) -> list[str]:
    kube = mocker.Mock()
    kube.create = mocker.AsyncMock(return_value={})
    recorder = EventRecorder(kube, **options)
    recorder.record(BODY, type="Normal", reason="WorkflowRunning", message="", progress=True)
    recorder.record(BODY, type="Normal", reason="StepDispatched", message="a", progress=True)
    recorder.record(BODY, type="Warning", reason="StepFailed", message="a failed")
    recorder.record(BODY, type="Normal", reason="WorkflowSucceeded", message="done")
    await recorder.flush()
    return [call.args[2]["reason"] for call in kube.create.await_args_list]


async def test_progress_events_are_not_posted_by_default(mocker: MockerFixture) -> None:
    assert await posted(mocker) == ["StepFailed", "WorkflowSucceeded"]


async def test_progress_events_are_posted_when_asked_for(mocker: MockerFixture) -> None:
    assert await posted(mocker, post_progress=True) == [
        "WorkflowRunning",
        "StepDispatched",
        "StepFailed",
        "WorkflowSucceeded",
    ]


async def test_no_normal_events_means_warnings_only(mocker: MockerFixture) -> None:
    assert await posted(mocker, post_normal=False, post_progress=True) == ["StepFailed"]
