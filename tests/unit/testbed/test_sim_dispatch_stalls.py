"""The simulator's dispatch faults (F10): off by default; when on, a share of scheduled
dispatches answers late or has its answer cut off, and their task ids are recorded (the
only duplicates the suite then allows). Over real HTTP, a cut-off answer is what the
operator's client calls a dispatch AgentKit may have taken."""

from __future__ import annotations

import time

import httpx

from opscore_operator.agentkit import AgentKitClient
from opscore_testbed.agentkit_sim import SimSettings, run_simulator
from opscore_testbed.agentkit_sim_state import DispatchFaults, DispatchStalls

REGISTRATION = {
    "agentName": "summarizer",
    "version": "1.0.0",
    "contactEndpoint": "http://127.0.0.1:9/task",
    "capabilities": ["summarize"],
    "metadata": {"description": "test agent"},
}
MESSAGE = {
    "senderId": "opscore",
    "messageType": "workflow_task",
    "payload": {"task": "summarize"},
    "opscore_task_id": "t-1",
}


async def test_no_fault_by_default() -> None:
    stalls = DispatchStalls(seed=1)
    started = time.monotonic()
    cut = [await stalls.after_scheduled(f"t-{n}") for n in range(50)]
    assert (stalls.stalled, stalls.reset, any(cut)) == ([], [], False)
    assert time.monotonic() - started < 0.5


async def test_a_stall_records_the_task_id_and_answers_late() -> None:
    stalls = DispatchStalls(seed=1)
    stalls.faults = DispatchFaults(stall_rate=1.0, stall_seconds=0.2)
    started = time.monotonic()
    assert await stalls.after_scheduled("t-1") is False
    assert stalls.stalled == ["t-1"]
    assert time.monotonic() - started >= 0.2


async def test_a_share_of_dispatches_is_stalled_and_another_cut_off() -> None:
    stalls = DispatchStalls(seed=3)
    stalls.faults = DispatchFaults(stall_rate=0.25, stall_seconds=0.0, reset_rate=0.25)
    cut = [await stalls.after_scheduled(f"t-{n}") for n in range(400)]
    assert 60 <= len(stalls.stalled) <= 140
    assert 60 <= len(stalls.reset) <= 140
    assert sum(cut) == len(stalls.reset)
    assert not set(stalls.stalled) & set(stalls.reset)


async def test_a_cut_off_answer_reaches_the_operator_as_a_dispatch_that_may_have_landed() -> None:
    async with run_simulator(SimSettings(port=0, opscore_url="http://127.0.0.1:9")) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as http:
            registered = await http.post("/v1/agents/register", json=REGISTRATION)
            agent_id = registered.json()["data"]["agentId"]
            faults = {"reset_rate": 1.0}
            assert (await http.post("/sim/dispatch-faults", json=faults)).status_code == 200
        client = AgentKitClient(sim.url, attempts=2, backoff=0.0)
        try:
            result = await client.run(agent_id, MESSAGE)
        finally:
            await client.aclose()
        assert (result.outcome, result.maybe_delivered) == ("unreachable", True)
        assert "Lost:" in result.detail  # the answer was cut off after the request went out
        assert sim.simulator.stalls.reset == ["t-1", "t-1"]  # both tries were scheduled
