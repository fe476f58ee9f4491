"""The simulator's webhook and simulated SDK agents keep the wire contracts real agents use
(agentkit-contract.md): report bodies and headers, order, and the faults tests plant.

Most tests run the simulator for real next to a stand-in Ops-Core that records every state
report, webhook and forwarded message, and wait on conditions with deadlines instead of sleeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import datetime

import pytest
from sim_harness import (
    API_KEY,
    SDK_TIMESTAMP,
    SECRET,
    OpsCoreRecorder,
    Sim,
    completed,
    registration,
    wait_for,
)

from opscore_testbed.asgi_serving import bind_socket

pytestmark = pytest.mark.timeout(60)


# --- Webhook --------------------------------------------------------------------------------------


async def test_webhook_signature_verifies_over_timestamp_and_raw_body(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    registered = await sim.client.post("/v1/agents/register", json=registration())
    agent_id = registered.json()["data"]["agentId"]

    [webhook] = await wait_for(lambda: opscore.of("webhook"), what="the webhook")

    timestamp = webhook.headers["X-AgentKit-Timestamp"]
    assert timestamp.isdigit()
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + webhook.raw, hashlib.sha256
    ).hexdigest()
    assert webhook.headers["X-AgentKit-Signature"] == expected
    details = webhook.body["agent_details"]
    assert webhook.body["event_type"] == "REGISTER"
    assert details["agentId"] == agent_id
    assert details["agentName"] == "summarizer"
    assert details["capabilities"] == ["summarize"]
    assert details["contactEndpoint"] == "http://127.0.0.1:9/task"
    assert details["metadata"] == {"description": "test agent", "config": {"k": "v"}}
    assert details["registration_time"].endswith("Z")


async def test_first_idle_report_precedes_the_webhook(sim: Sim, opscore: OpsCoreRecorder) -> None:
    agent_id = (await sim.add_agent(name="summarizer", capabilities=["summarize"]))["agentId"]

    await wait_for(lambda: opscore.of("webhook"), what="the webhook")

    order = [
        item.kind
        for item in opscore.received
        if item.kind == "webhook" or item.body["agentId"] == agent_id
    ]
    assert order == ["report", "webhook"]
    assert opscore.states(agent_id) == ["idle"]


async def test_webhook_first_option_sends_the_webhook_before_the_first_report(
    start_sim: Callable[..., contextlib.AbstractAsyncContextManager[Sim]],
    opscore: OpsCoreRecorder,
) -> None:
    async with start_sim(report_before_webhook=False) as sim:
        await sim.add_agent(name="summarizer")
        await wait_for(lambda: opscore.of("report"), what="the first report")

    assert [item.kind for item in opscore.received] == ["webhook", "report"]


# --- Simulated agents -----------------------------------------------------------------------------


async def test_task_is_followed_by_active_then_idle_with_sdk_body_and_headers(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="summarizer", capabilities=["summarize"]))["agentId"]

    response = await sim.run(agent_id, opscore_task_id="t-1", payload={"task_name": "summarize"})
    assert response.status_code == 202
    await wait_for(lambda: len(opscore.reports(agent_id)) == 3, what="active and idle")

    assert opscore.states(agent_id) == ["idle", "active", "idle"]
    for report in opscore.reports(agent_id):
        assert report.path == f"/v1/opscore/agent/{agent_id}/state"
        assert report.headers["Authorization"] == f"Bearer {API_KEY}"
        assert report.headers["Content-Type"] == "application/json"
        assert set(report.body) == {"agentId", "timestamp", "state", "details"}
        assert report.body["details"] == {}
        assert SDK_TIMESTAMP.match(report.body["timestamp"])
    active, idle = (
        datetime.fromisoformat(r.body["timestamp"]) for r in opscore.reports(agent_id)[1:]
    )
    assert (idle - active).total_seconds() >= 0.009


async def test_failing_task_reports_only_error_with_code_and_message(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="flaky", failure_rate=1.0))["agentId"]

    await sim.run(agent_id, task_name="translate", payload={})
    await wait_for(lambda: completed(sim, "flaky", 1), what="the task")

    assert opscore.states(agent_id) == ["idle", "error"]
    details = opscore.reports(agent_id)[-1].body["details"]
    assert details["error_code"] == "TASK_FAILED"
    assert "translate" in details["message"]


async def test_patch_changes_behaviour_at_runtime(sim: Sim, opscore: OpsCoreRecorder) -> None:
    agent_id = (await sim.add_agent(name="summarizer"))["agentId"]

    patched = await sim.client.patch("/sim/agents/summarizer", json={"failure_rate": 1.0})
    await sim.run(agent_id)
    await wait_for(lambda: completed(sim, "summarizer", 1), what="the task")

    assert patched.json()["failure_rate"] == 1.0
    assert opscore.states(agent_id) == ["idle", "error"]


async def test_correlated_agent_reports_task_id_and_output(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="summarizer", mode="correlated"))["agentId"]
    payload = {"task_name": "summarize", "text": "hello"}

    await sim.run(agent_id, opscore_task_id="wf-1.a.1", payload=payload)
    await wait_for(lambda: len(opscore.reports(agent_id)) == 3, what="active and idle")

    startup, active, idle = (report.body["details"] for report in opscore.reports(agent_id))
    assert startup == {}
    assert active == {"opscore_task_id": "wf-1.a.1"}
    assert idle == {
        "opscore_task_id": "wf-1.a.1",
        "output": {"echo": payload, "agent": "summarizer"},
    }


async def test_correlated_failure_carries_task_id(sim: Sim, opscore: OpsCoreRecorder) -> None:
    agent_id = (await sim.add_agent(name="x", mode="correlated", failure_rate=1.0))["agentId"]

    await sim.run(agent_id, opscore_task_id="wf-1.a.1")
    await wait_for(lambda: len(opscore.reports(agent_id)) == 2, what="the error report")

    details = opscore.reports(agent_id)[-1].body["details"]
    assert details["opscore_task_id"] == "wf-1.a.1"
    assert details["error_code"] == "TASK_FAILED"


async def test_silent_agent_takes_tasks_but_never_reports_them(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="mute", silent=True))["agentId"]

    await sim.run(agent_id, opscore_task_id="t-1")
    await wait_for(lambda: completed(sim, "mute", 1), what="the task")

    assert (await sim.agent("mute"))["tasks_received"] == 1
    assert opscore.states(agent_id) == ["idle"]  # only the start-up report


async def test_deliver_twice_next_delivers_one_task_twice_then_behaves(sim: Sim) -> None:
    agent_id = (await sim.add_agent(name="echo", deliver_twice_next=1))["agentId"]

    await sim.run(agent_id, opscore_task_id="t-1")
    await sim.run(agent_id, opscore_task_id="t-2")
    await wait_for(lambda: completed(sim, "echo", 3), what="three deliveries")

    by_task_id = (await sim.client.get("/sim/tasks")).json()["by_task_id"]
    assert by_task_id == {"t-1": 2, "t-2": 1}
    assert (await sim.agent("echo"))["deliver_twice_next"] == 0


async def test_drop_reports_next_loses_one_tasks_reports_then_behaves(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="lossy", drop_reports_next=1))["agentId"]

    await sim.run(agent_id, opscore_task_id="t-1")
    await wait_for(lambda: completed(sim, "lossy", 1), what="the first task")
    await sim.run(agent_id, opscore_task_id="t-2")
    await wait_for(lambda: completed(sim, "lossy", 2), what="the second task")

    assert opscore.states(agent_id) == ["idle", "active", "idle"]  # start-up, then t-2 only
    assert (await sim.agent("lossy"))["drop_reports_next"] == 0


async def test_dispatch_delay_slows_only_that_agents_run_endpoint(sim: Sim) -> None:
    slow = (await sim.add_agent(name="slowpoke", dispatch_delay_seconds=0.5))["agentId"]
    fast = (await sim.add_agent(name="quick"))["agentId"]

    started = time.monotonic()
    await sim.run(fast)
    fast_seconds = time.monotonic() - started
    started = time.monotonic()
    answer = await sim.run(slow)
    slow_seconds = time.monotonic() - started

    assert answer.status_code == 202
    assert slow_seconds >= 0.5
    assert fast_seconds < 0.5
    patched = await sim.client.patch("/sim/agents/slowpoke", json={"dispatch_delay_seconds": 0})
    assert patched.json()["dispatch_delay_seconds"] == 0


async def test_down_agent_answers_503_and_receives_nothing(sim: Sim) -> None:
    agent = await sim.add_agent(name="gone", down=True)

    response = await sim.client.post(
        agent["contactEndpoint"],
        json={"senderId": "x", "messageType": "workflow_task", "payload": {}},
    )

    assert response.status_code == 503
    assert (await sim.client.get("/sim/tasks")).json()["total"] == 0


async def test_duration_delays_the_reports(sim: Sim, opscore: OpsCoreRecorder) -> None:
    agent_id = (await sim.add_agent(name="slow", duration_seconds=0.3))["agentId"]
    started = time.monotonic()

    await sim.run(agent_id)
    await wait_for(lambda: len(opscore.reports(agent_id)) == 3, what="active and idle")

    assert time.monotonic() - started >= 0.3


async def test_httpcore_transport_delivers_the_same_reports(
    start_sim: Callable[..., contextlib.AbstractAsyncContextManager[Sim]],
    opscore: OpsCoreRecorder,
) -> None:
    async with start_sim(transport="httpcore") as sim:
        agent_id = (await sim.add_agent(name="summarizer"))["agentId"]
        await sim.run(agent_id)
        await wait_for(lambda: len(opscore.reports(agent_id)) == 3, what="active and idle")

    assert opscore.states(agent_id) == ["idle", "active", "idle"]
    assert opscore.reports(agent_id)[-1].headers["Authorization"] == f"Bearer {API_KEY}"


async def test_report_failures_are_counted_not_raised(
    start_sim: Callable[..., contextlib.AbstractAsyncContextManager[Sim]],
) -> None:
    closed = bind_socket("127.0.0.1", 0)  # bound, never listening: connections are refused
    try:
        async with start_sim(opscore_url=f"http://127.0.0.1:{closed.getsockname()[1]}") as sim:
            agent_id = (await sim.add_agent(name="summarizer"))["agentId"]
            assert (await sim.run(agent_id)).status_code == 202
            await wait_for(lambda: completed(sim, "summarizer", 1), what="the task")
            agent = await sim.agent("summarizer")
    finally:
        closed.close()

    assert agent["reports_failed"] == 3
    assert agent["reports_sent"] == 0
