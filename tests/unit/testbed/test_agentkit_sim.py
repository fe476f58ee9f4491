"""The AgentKit simulator keeps AgentKit's and SDK agents' wire contracts (agentkit-contract.md).

Most tests run the simulator for real (uvicorn on a free port) next to a stand-in Ops-Core that
records every state report, webhook and forwarded message it receives, and wait on conditions
with deadlines instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import json
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.datastructures import Headers

from opscore_testbed.agentkit_sim import (
    RunningSimulator,
    SimSettings,
    create_app,
    parse_agent_option,
    parse_args,
    run_simulator,
)
from opscore_testbed.agentkit_sim_agents import AgentSpec
from opscore_testbed.asgi_serving import bind_socket, serve_app

pytestmark = pytest.mark.timeout(60)

API_KEY = "test-api-key"
SECRET = "webhook-secret"
SDK_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
MESSAGE_KEYS = {
    "senderId",
    "timestamp",
    "messageType",
    "payload",
    "sessionContext",
    "task_name",
    "opscore_session_id",
    "opscore_task_id",
}


async def wait_for(condition: Callable[[], Any], *, within: float = 5.0, what: str = "") -> Any:
    """Poll `condition` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)


@dataclass
class Received:
    kind: str  # "report" | "webhook" | "message"
    path: str
    headers: Headers
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class OpsCoreRecorder:
    """A stand-in Ops-Core (and one external agent endpoint) that records what arrives, in order."""

    url: str = ""
    received: list[Received] = field(default_factory=list)

    def build_app(self) -> FastAPI:
        app = FastAPI()

        async def record(kind: str, request: Request) -> None:
            raw = await request.body()
            self.received.append(Received(kind, request.url.path, request.headers, raw))

        @app.post("/v1/opscore/agent/{agent_id}/state", status_code=202)
        async def state(agent_id: str, request: Request) -> dict[str, str]:
            await record("report", request)
            return {"status": "success", "message": "State update accepted"}

        @app.post("/v1/opscore/internal/agent/notify")
        async def notify(request: Request) -> dict[str, str]:
            await record("webhook", request)
            return {"status": "success"}

        @app.post("/agent")
        async def agent(request: Request) -> dict[str, str]:
            await record("message", request)
            return {"status": "received"}

        return app

    def of(self, kind: str) -> list[Received]:
        return [item for item in self.received if item.kind == kind]

    def reports(self, agent_id: str) -> list[Received]:
        return [item for item in self.of("report") if item.body["agentId"] == agent_id]

    def states(self, agent_id: str) -> list[str]:
        return [item.body["state"] for item in self.reports(agent_id)]


@pytest.fixture
async def opscore() -> AsyncIterator[OpsCoreRecorder]:
    recorder = OpsCoreRecorder()
    sock = bind_socket("127.0.0.1", 0)
    recorder.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with serve_app(recorder.build_app(), sock):
        yield recorder


@dataclass
class Sim:
    running: RunningSimulator
    client: httpx.AsyncClient

    async def add_agent(self, **spec: Any) -> dict[str, Any]:
        response = await self.client.post("/sim/agents", json=spec)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def agent(self, name: str) -> dict[str, Any]:
        return dict((await self.client.get(f"/sim/agents/{name}")).json())

    async def run(self, agent_id: str, **fields: Any) -> httpx.Response:
        message = {"senderId": "opscore", "messageType": "workflow_task", "payload": {}} | fields
        return await self.client.post(f"/v1/agents/{agent_id}/run", json=message)


def sim_settings(opscore: OpsCoreRecorder, **overrides: Any) -> SimSettings:
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        # A path prefix the SDK would drop: reports must still land at the host's root.
        "opscore_url": f"{opscore.url}/ignored/prefix",
        "api_key": API_KEY,
        "webhook_url": f"{opscore.url}/v1/opscore/internal/agent/notify",
        "webhook_secret": SECRET,
        "seed": 7,
    }
    return SimSettings(**(defaults | overrides))


@pytest.fixture
def start_sim(
    opscore: OpsCoreRecorder,
) -> Callable[..., contextlib.AbstractAsyncContextManager[Sim]]:
    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Sim]:
        async with (
            run_simulator(sim_settings(opscore, **overrides)) as running,
            httpx.AsyncClient(base_url=running.url) as client,
        ):
            yield Sim(running, client)

    return start


@pytest.fixture
async def sim(
    start_sim: Callable[..., contextlib.AbstractAsyncContextManager[Sim]],
) -> AsyncIterator[Sim]:
    async with start_sim() as started:
        yield started


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """AgentKit's API in-process (no webhook, nothing listening): for request/answer cases."""
    app = create_app(SimSettings(opscore_url="http://127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentkit") as client:
        yield client
    await app.state.simulator.aclose()


def registration(
    name: str = "summarizer", endpoint: str = "http://127.0.0.1:9/task"
) -> dict[str, Any]:
    return {
        "agentName": name,
        "version": "1.0.0",
        "contactEndpoint": endpoint,
        "capabilities": ["summarize"],
        "metadata": {"description": "test agent", "config": {"k": "v"}},
    }


# --- AgentKit's API -------------------------------------------------------------------------------


async def test_register_answers_201_with_envelope_and_uuid4(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/agents/register", json=registration())

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "success"
    assert isinstance(body["message"], str)
    assert body["error_code"] is None
    assert set(body["data"]) == {"agentId"}
    assert uuid.UUID(body["data"]["agentId"]).version == 4


async def test_register_duplicate_name_is_409(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/agents/register", json=registration())).status_code == 201

    response = await api.post("/v1/agents/register", json=registration())

    assert response.status_code == 409
    assert "summarizer" in response.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [{"version": None}, {"contactEndpoint": "not a url"}, {"capabilities": "summarize"}],
    ids=["missing-version", "bad-url", "capabilities-not-list"],
)
async def test_register_bad_body_is_422(api: httpx.AsyncClient, change: dict[str, Any]) -> None:
    body = {k: v for k, v in (registration() | change).items() if v is not None}

    assert (await api.post("/v1/agents/register", json=body)).status_code == 422


async def test_run_answers_202_scheduled_envelope(api: httpx.AsyncClient) -> None:
    agent_id = (await api.post("/v1/agents/register", json=registration())).json()["data"][
        "agentId"
    ]

    response = await api.post(
        f"/v1/agents/{agent_id}/run",
        json={"senderId": "opscore", "messageType": "workflow_task", "payload": {"x": 1}},
    )

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "success"
    assert body["message"].startswith("Message accepted for agent")
    assert body["data"] == {"agentId": agent_id, "dispatch_status": "scheduled"}
    assert body["error_code"] is None


async def test_run_for_unknown_agent_is_404_with_agentkit_detail(api: httpx.AsyncClient) -> None:
    message = {"senderId": "opscore", "messageType": "workflow_task", "payload": {}}

    response = await api.post("/v1/agents/nope-123/run", json=message)

    assert response.status_code == 404
    assert response.json() == {"detail": "Agent with ID 'nope-123' not found."}


@pytest.mark.parametrize(
    "message",
    [
        {"messageType": "workflow_task", "payload": {}},
        {"senderId": "opscore", "payload": {}},
        {"senderId": "opscore", "messageType": "workflow_task", "payload": [1, 2]},
    ],
    ids=["no-senderId", "no-messageType", "payload-not-object"],
)
async def test_run_bad_body_is_422(api: httpx.AsyncClient, message: dict[str, Any]) -> None:
    agent_id = (await api.post("/v1/agents/register", json=registration())).json()["data"][
        "agentId"
    ]

    assert (await api.post(f"/v1/agents/{agent_id}/run", json=message)).status_code == 422


async def test_listing_agents_is_404_like_the_real_service(api: httpx.AsyncClient) -> None:
    await api.post("/v1/agents/register", json=registration())

    assert (await api.get("/v1/agents")).status_code == 404


async def test_list_endpoint_flag_answers_envelope_with_agents() -> None:
    app = create_app(SimSettings(list_endpoint=True))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentkit") as client:
        agent_id = (await client.post("/v1/agents/register", json=registration())).json()["data"][
            "agentId"
        ]
        response = await client.get("/v1/agents")
    await app.state.simulator.aclose()

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert [agent["agentId"] for agent in body["data"]] == [agent_id]


async def test_run_forwards_only_the_fields_agentkit_keeps(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    registered = await sim.client.post(
        "/v1/agents/register", json=registration("external", f"{opscore.url}/agent")
    )
    agent_id = registered.json()["data"]["agentId"]

    await sim.run(
        agent_id,
        payload={"task_name": "summarize", "text": "hi"},
        sessionContext={"sessionId": "s-1", "priorMessages": [], "dropped": True},
        task_name="summarize",
        opscore_session_id="wf-1",
        opscore_task_id="wf-1.a.1",
        unknownTopLevel="dropped",
    )
    [message] = await wait_for(lambda: opscore.of("message"), what="the forwarded message")

    body = message.body
    assert set(body) == MESSAGE_KEYS
    assert body["sessionContext"] == {"sessionId": "s-1", "priorMessages": []}
    assert body["payload"] == {"task_name": "summarize", "text": "hi"}
    assert (body["task_name"], body["opscore_session_id"], body["opscore_task_id"]) == (
        "summarize",
        "wf-1",
        "wf-1.a.1",
    )


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
    await wait_for(lambda: _completed(sim, "flaky", 1), what="the task")

    assert opscore.states(agent_id) == ["idle", "error"]
    details = opscore.reports(agent_id)[-1].body["details"]
    assert details["error_code"] == "TASK_FAILED"
    assert "translate" in details["message"]


async def _completed(sim: Sim, name: str, count: int) -> bool:
    return bool((await sim.agent(name))["tasks_completed"] >= count)


async def test_patch_changes_behaviour_at_runtime(sim: Sim, opscore: OpsCoreRecorder) -> None:
    agent_id = (await sim.add_agent(name="summarizer"))["agentId"]

    patched = await sim.client.patch("/sim/agents/summarizer", json={"failure_rate": 1.0})
    await sim.run(agent_id)
    await wait_for(lambda: _completed(sim, "summarizer", 1), what="the task")

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
    await wait_for(lambda: _completed(sim, "mute", 1), what="the task")

    assert (await sim.agent("mute"))["tasks_received"] == 1
    assert opscore.states(agent_id) == ["idle"]  # only the start-up report


async def test_deliver_twice_next_delivers_one_task_twice_then_behaves(sim: Sim) -> None:
    agent_id = (await sim.add_agent(name="echo", deliver_twice_next=1))["agentId"]

    await sim.run(agent_id, opscore_task_id="t-1")
    await sim.run(agent_id, opscore_task_id="t-2")
    await wait_for(lambda: _completed(sim, "echo", 3), what="three deliveries")

    by_task_id = (await sim.client.get("/sim/tasks")).json()["by_task_id"]
    assert by_task_id == {"t-1": 2, "t-2": 1}
    assert (await sim.agent("echo"))["deliver_twice_next"] == 0


async def test_drop_reports_next_loses_one_tasks_reports_then_behaves(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="lossy", drop_reports_next=1))["agentId"]

    await sim.run(agent_id, opscore_task_id="t-1")
    await wait_for(lambda: _completed(sim, "lossy", 1), what="the first task")
    await sim.run(agent_id, opscore_task_id="t-2")
    await wait_for(lambda: _completed(sim, "lossy", 2), what="the second task")

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
            await wait_for(lambda: _completed(sim, "summarizer", 1), what="the task")
            agent = await sim.agent("summarizer")
    finally:
        closed.close()

    assert agent["reports_failed"] == 3
    assert agent["reports_sent"] == 0


# --- /sim endpoints -------------------------------------------------------------------------------


async def test_sim_tasks_counts_every_received_task_by_opscore_task_id(sim: Sim) -> None:
    first = (await sim.add_agent(name="a"))["agentId"]
    second = (await sim.add_agent(name="b"))["agentId"]

    await sim.run(first, opscore_task_id="t-1", task_name="summarize")
    await sim.run(second, opscore_task_id="t-1", task_name="summarize")
    await sim.run(second, opscore_task_id="t-2", task_name="translate")

    async def all_received() -> dict[str, Any] | None:
        answer = (await sim.client.get("/sim/tasks")).json()
        return dict(answer) if answer["total"] == 3 else None

    answer = await wait_for(all_received, what="three received tasks")
    assert answer["by_task_id"] == {"t-1": 2, "t-2": 1}
    assert {(t["agentName"], t["opscore_task_id"]) for t in answer["tasks"]} == {
        ("a", "t-1"),
        ("b", "t-1"),
        ("b", "t-2"),
    }
    for task in answer["tasks"]:
        assert {"agentId", "agentName", "opscore_task_id", "task_name", "received_at"} <= set(task)


async def test_sim_tasks_notes_when_the_final_report_was_accepted(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    agent_id = (await sim.add_agent(name="summarizer"))["agentId"]

    await sim.run(agent_id, opscore_task_id="t-1")
    await wait_for(lambda: _completed(sim, "summarizer", 1), what="the task")

    [task] = (await sim.client.get("/sim/tasks")).json()["tasks"]
    assert task["final_report_acked_epoch"] >= task["received_epoch"]


async def test_forget_makes_runs_404_until_the_agent_registers_again(
    sim: Sim, opscore: OpsCoreRecorder
) -> None:
    old_id = (await sim.add_agent(name="summarizer"))["agentId"]

    assert (await sim.client.post("/sim/forget")).json() == {"forgotten": 1}
    gone = await sim.run(old_id)
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"Agent with ID '{old_id}' not found."}
    assert (await sim.agent("summarizer"))["registered"] is False

    again = await sim.client.post("/sim/agents/summarizer/register")
    new_id = again.json()["agentId"]
    assert again.status_code == 201
    assert new_id != old_id
    assert (await sim.run(new_id)).status_code == 202
    await wait_for(lambda: len(opscore.of("webhook")) == 2, what="a second webhook")


async def test_sim_endpoints_wait_until_start_up_agents_are_registered(
    opscore: OpsCoreRecorder,
) -> None:
    spec = AgentSpec(name="summarizer", capabilities=["summarize"])
    app = create_app(sim_settings(opscore, agents=[spec]))
    sim = app.state.simulator
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentkit") as client:
        listing = asyncio.create_task(client.get("/sim/agents"))
        for _ in range(50):  # event-loop turns, no wall-clock wait: the request reaches the gate
            await asyncio.sleep(0)
        assert not listing.done()

        await sim.add_simulated(spec)
        sim.ready.set()
        answer = await listing
    await sim.aclose()

    assert [agent["name"] for agent in answer.json()] == ["summarizer"]


async def test_sim_agent_name_taken_is_409(sim: Sim) -> None:
    await sim.add_agent(name="summarizer")

    response = await sim.client.post("/sim/agents", json={"name": "summarizer"})

    assert response.status_code == 409


async def test_outage_answers_503_on_agentkit_api_only(sim: Sim) -> None:
    await sim.client.post("/sim/outage", json={"seconds": 60, "mode": "503"})

    assert (await sim.client.post("/v1/agents/register", json=registration())).status_code == 503
    assert (await sim.run("whatever")).status_code == 503
    assert (await sim.client.get("/sim/tasks")).status_code == 200

    await sim.client.post("/sim/outage", json={"seconds": 0})
    assert (await sim.client.post("/v1/agents/register", json=registration())).status_code == 201


async def test_outage_ends_by_itself_after_its_window(sim: Sim) -> None:
    await sim.client.post("/sim/outage", json={"seconds": 1.0, "mode": "503"})
    assert (await sim.client.post("/v1/agents/register", json=registration())).status_code == 503

    async def registers() -> bool:
        response = await sim.client.post("/v1/agents/register", json=registration())
        return response.status_code == 201

    await wait_for(registers, within=5.0, what="the end of the outage")


async def test_slow_outage_delays_answers_until_ended(sim: Sim) -> None:
    await sim.client.post("/sim/outage", json={"seconds": 60, "mode": "slow", "delay_seconds": 0.6})

    started = time.monotonic()
    assert (await sim.run("whatever")).status_code == 404
    assert time.monotonic() - started >= 0.6

    await sim.client.post("/sim/outage", json={"seconds": 0})
    started = time.monotonic()
    assert (await sim.run("whatever")).status_code == 404
    assert time.monotonic() - started < 0.6


# --- CLI ------------------------------------------------------------------------------------------


def test_agent_option_parses_name_and_capabilities() -> None:
    assert parse_agent_option("summarizer:summarize,translate") == (
        "summarizer",
        ["summarize", "translate"],
    )
    assert parse_agent_option("solo") == ("solo", [])


def test_cli_refuses_duplicate_agent_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--agents", "a:x", "--agents", "a:y"])

    assert "unique" in capsys.readouterr().err


def test_cli_falls_back_to_opscore_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCORE_API_KEY", "from-env")
    monkeypatch.setenv("OPSCORE_API_URL", "http://opscore:8080")
    monkeypatch.setenv("OPSCORE_WEBHOOK_URL", "http://opscore:8080/hook")
    monkeypatch.setenv("OPSCORE_WEBHOOK_SECRET", "s3cret")

    settings, _ = parse_args(["--agents", "a:x", "--agents", "b:y,z", "--mode", "correlated"])

    assert (settings.api_key, settings.opscore_url) == ("from-env", "http://opscore:8080")
    assert (settings.webhook_url, settings.webhook_secret) == ("http://opscore:8080/hook", "s3cret")
    assert [(a.name, a.capabilities, a.mode) for a in settings.agents] == [
        ("a", ["x"], "correlated"),
        ("b", ["y", "z"], "correlated"),
    ]


async def test_cli_serves_registers_agents_and_logs_json_lines(opscore: OpsCoreRecorder) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opscore_testbed.agentkit_sim",
        "--port",
        "0",
        "--opscore-url",
        opscore.url,
        "--api-key",
        API_KEY,
        "--webhook-url",
        f"{opscore.url}/v1/opscore/internal/agent/notify",
        "--webhook-secret",
        SECRET,
        "--agents",
        "summarizer:summarize,translate",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[bytes] = []
    try:
        url = None
        while url is None:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
            assert line, "the simulator exited before listening"
            lines.append(line)
            record = json.loads(line)
            if record["message"] == "AgentKit simulator listening":
                url = record["url"]
        async with httpx.AsyncClient(base_url=url) as client:
            [agent] = (await client.get("/sim/agents")).json()
        assert agent["capabilities"] == ["summarize", "translate"]
        await wait_for(lambda: opscore.states(agent["agentId"]) == ["idle"], what="first idle")
        await wait_for(lambda: opscore.of("webhook"), what="the webhook")
    finally:
        process.terminate()  # SIGTERM: a graceful shutdown
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0
    for line in lines + rest.splitlines():
        record = json.loads(line)
        assert {"timestamp", "level", "name", "message"} <= set(record)
