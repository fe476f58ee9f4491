"""The dispatched message: correlation ids where AgentKit keeps them, and the trace
context (only when tracing is on) inside `payload`, which AgentKit forwards as it is."""

from __future__ import annotations

from opscore_logic.decision import Dispatch, WorkflowRef
from opscore_operator.agentkit import task_message

REF = WorkflowRef(namespace="ns", name="wf", uid="6f1c2a4e-9b7d-4c3e-8a21-0d5e6f7a8b9c")
DISPATCH = Dispatch(
    step="collect",
    agent="researcher",
    agent_id="id-1",
    task_id=f"{REF.uid}:collect:0:1",
    task_name="collect",
    parameters={"topic": "x"},
    attempt=1,
)
AGENTKIT_KEEPS = {
    "senderId",
    "messageType",
    "payload",
    "timestamp",
    "sessionContext",
    "task_name",
    "opscore_session_id",
    "opscore_task_id",
}


def test_the_traceparent_travels_in_the_payload_and_nothing_agentkit_drops_is_added() -> None:
    value = "00-6f1c2a4e9b7d4c3e8a210d5e6f7a8b9c-00f067aa0ba902b7-01"
    message = task_message(DISPATCH, REF, traceparent=value)
    assert set(message) <= AGENTKIT_KEEPS
    assert message["payload"]["traceparent"] == value
    assert message["payload"]["parameters"] == {"topic": "x"}


def test_without_tracing_the_payload_has_no_traceparent() -> None:
    assert "traceparent" not in task_message(DISPATCH, REF)["payload"]
