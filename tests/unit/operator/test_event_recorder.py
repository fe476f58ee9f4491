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


async def test_normal_events_past_their_budget_are_skipped_but_warnings_never(
    mocker: MockerFixture,
) -> None:
    kube = mocker.Mock()
    kube.create = mocker.AsyncMock(return_value={})
    recorder = EventRecorder(kube, normal_per_second=0.001, normal_burst=2)
    for index in range(5):
        recorder.record(BODY, type="Normal", reason="WorkflowSucceeded", message=str(index))
        recorder.record(BODY, type="Warning", reason="StepFailed", message=str(index))
    await recorder.flush()
    reasons = [call.args[2]["reason"] for call in kube.create.await_args_list]
    assert reasons.count("WorkflowSucceeded") == 2
    assert reasons.count("StepFailed") == 5


async def test_the_normal_event_budget_refills_with_time(mocker: MockerFixture) -> None:
    clock = mocker.patch("opscore_kube.ratelimit.time.monotonic", return_value=100.0)
    kube = mocker.Mock()
    kube.create = mocker.AsyncMock(return_value={})
    recorder = EventRecorder(kube, normal_per_second=1.0, normal_burst=1)
    recorder.record(BODY, type="Normal", reason="WorkflowSucceeded", message="first")
    recorder.record(BODY, type="Normal", reason="WorkflowSucceeded", message="skipped")
    clock.return_value = 101.0
    recorder.record(BODY, type="Normal", reason="WorkflowSucceeded", message="refilled")
    await recorder.flush()
    assert [call.args[2]["message"] for call in kube.create.await_args_list] == [
        "first",
        "refilled",
    ]
