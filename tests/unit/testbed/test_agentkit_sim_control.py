"""The simulator's own /sim endpoints: task counts, agent management and AgentKit outages.

Most tests run the simulator for real next to a stand-in Ops-Core that records every state
report, webhook and forwarded message, and wait on conditions with deadlines instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sim_harness import (
    OpsCoreRecorder,
    Sim,
    completed,
    registration,
    sim_settings,
    wait_for,
)

from opscore_testbed.agentkit_sim import (
    create_app,
)
from opscore_testbed.agentkit_sim_agents import AgentSpec

pytestmark = pytest.mark.timeout(60)


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
    await wait_for(lambda: completed(sim, "summarizer", 1), what="the task")

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
