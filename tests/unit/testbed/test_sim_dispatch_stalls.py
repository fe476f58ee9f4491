"""The simulator's dispatch stalls (F10): off by default, and when on, the stalled task
ids are recorded (the only duplicates the suite then allows) and the answer waits."""

from __future__ import annotations

import time

from opscore_testbed.agentkit_sim_state import DispatchFaults, DispatchStalls


async def test_no_stall_by_default() -> None:
    stalls = DispatchStalls(seed=1)
    started = time.monotonic()
    for n in range(50):
        await stalls.maybe_stall(f"t-{n}")
    assert stalls.stalled == []
    assert time.monotonic() - started < 0.5


async def test_a_stall_records_the_task_id_and_answers_late() -> None:
    stalls = DispatchStalls(seed=1)
    stalls.faults = DispatchFaults(stall_rate=1.0, stall_seconds=0.2)
    started = time.monotonic()
    await stalls.maybe_stall("t-1")
    assert stalls.stalled == ["t-1"]
    assert time.monotonic() - started >= 0.2


async def test_a_share_of_dispatches_is_stalled() -> None:
    stalls = DispatchStalls(seed=3)
    stalls.faults = DispatchFaults(stall_rate=0.25, stall_seconds=0.0)
    for n in range(400):
        await stalls.maybe_stall(f"t-{n}")
    assert 60 <= len(stalls.stalled) <= 140
