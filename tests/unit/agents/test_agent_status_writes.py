"""When the operator writes an Agent's derived status: what `kubectl get agents` prints
(state, Ready, current task; Error, Offline, Paused...) at the next pass, so a dispatch and
an error show at once; a task's end once the agent has stayed Idle for
AGENT_IDLE_QUIET_SECONDS (a gap between two tasks is never written); a busy agent's move
to its next task once that task has been current for AGENT_TASK_QUIET_SECONDS; the raw
state string alone once it has held still for AGENT_STATUS_QUIET_SECONDS; either after
AGENT_STATUS_MAX_LAG_SECONDS while it keeps changing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from agent_harness import NS, World, report, restart_clock
from pytest_mock import MockerFixture

from opscore_logic.agent_model import MAX_REPORTS
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_operator.agent_reconciler import (
    AGENT_IDLE_QUIET_SECONDS,
    AGENT_STATUS_MAX_LAG_SECONDS,
    AGENT_STATUS_QUIET_SECONDS,
    AGENT_TASK_QUIET_SECONDS,
)
from opscore_operator.ledger import InFlight

NAME = "worker"


@pytest.fixture(autouse=True)
def _fresh_start() -> None:
    restart_clock()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(mocker: MockerFixture) -> Clock:
    fake = Clock()
    mocker.patch("opscore_operator.agent_reconciler.time.monotonic", fake)
    return fake


@pytest.fixture
def world() -> World:
    w = World()
    w.add(
        {
            "metadata": {"name": NAME, "labels": {AGENT_KEY_LABEL: agent_key(NAME)}},
            "spec": {"agentId": NAME, "capabilities": ["work"]},
            "status": {"reports": [report("idle", 1)]},
        }
    )
    return w


def status_writes(world: World) -> int:
    return world.kube.calls.count(("patch_status", NAME))


def stored(world: World) -> dict[str, Any]:
    return dict(world.kube.objects[NAME]["status"])


def give_task(world: World, task_id: str) -> None:
    flight = InFlight((NS, "wf"), "step", task_id, datetime.now(UTC))
    world.ledger.reserve((NS, NAME), flight)


def add_report(world: World, state: str, second: int, **details: Any) -> None:
    body = world.kube.objects[NAME]
    reports = [*body["status"]["reports"], {**report(state, second), "details": details}]
    reports = reports[-MAX_REPORTS:]  # what the sidecar keeps
    world.seen(world.kube.put({**body, "status": {**body["status"], "reports": reports}}))


def ready_of(world: World) -> tuple[str, str]:
    ready = next(c for c in stored(world)["conditions"] if c["type"] == "Ready")
    return ready["status"], ready["reason"]


async def test_a_dispatched_task_is_written_at_the_next_pass(world: World, clock: Clock) -> None:
    await world.reconcile(NAME)
    assert status_writes(world) == 1
    assert stored(world)["state"] == "Idle"

    give_task(world, "t-1")
    clock.now += 0.1
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert (stored(world)["state"], stored(world)["currentTaskId"]) == ("Active", "t-1")
    assert ready_of(world) == ("False", "Busy")


async def test_the_end_of_a_task_is_written_once_the_agent_stayed_idle(
    world: World, clock: Clock
) -> None:
    give_task(world, "t-1")
    await world.reconcile(NAME)
    world.ledger.release((NS, NAME), "t-1", "succeeded")
    clock.now += 0.1
    await world.reconcile(NAME)
    assert status_writes(world) == 1, "Idle for 0.1 s: perhaps only until the next task"
    assert stored(world)["state"] == "Active"

    clock.now += AGENT_IDLE_QUIET_SECONDS
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert stored(world)["state"] == "Idle"
    assert stored(world).get("currentTask") is None
    assert stored(world)["tasksSucceeded"] == 1
    assert ready_of(world) == ("True", "Ready")


async def test_an_idle_gap_between_two_tasks_costs_no_write(world: World, clock: Clock) -> None:
    """A queue drains: the agent is Idle for the moment the next dispatch takes. That gap
    used to cost two writes (Idle, then Active) for a state nobody saw."""
    give_task(world, "t-1")
    await world.reconcile(NAME)
    world.ledger.release((NS, NAME), "t-1", "succeeded")
    clock.now += 0.5
    await world.reconcile(NAME)
    give_task(world, "t-2")
    clock.now += 0.5
    await world.reconcile(NAME)
    assert status_writes(world) == 1
    assert (stored(world)["state"], stored(world)["currentTaskId"]) == ("Active", "t-1")


async def test_an_error_that_ends_a_task_is_not_held_as_an_idle_gap(
    world: World, clock: Clock
) -> None:
    give_task(world, "t-1")
    await world.reconcile(NAME)
    world.ledger.release((NS, NAME), "t-1", "failed")
    add_report(world, "error", 2, message="model quota exhausted")
    clock.now += 0.1
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert stored(world)["state"] == "Error"


async def test_the_next_task_right_after_one_ended_shows_once_it_was_current_for_a_second(
    world: World, clock: Clock
) -> None:
    give_task(world, "t-1")
    await world.reconcile(NAME)
    world.ledger.release((NS, NAME), "t-1", "succeeded")
    give_task(world, "t-2")
    await world.reconcile(NAME)
    assert status_writes(world) == 1, "Active before and after: only the task moved"
    assert stored(world)["currentTaskId"] == "t-1"

    clock.now += AGENT_TASK_QUIET_SECONDS
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert (stored(world)["currentTaskId"], stored(world)["tasksSucceeded"]) == ("t-2", 1)


async def test_short_tasks_back_to_back_cost_no_write_until_the_agent_idles(
    world: World, clock: Clock
) -> None:
    give_task(world, "t-0")
    await world.reconcile(NAME)
    assert status_writes(world) == 1
    for number in range(1, 20):  # a task every 0.1 s: none is current for a second
        world.ledger.release((NS, NAME), f"t-{number - 1}", "succeeded")
        give_task(world, f"t-{number}")
        clock.now += 0.1
        await world.reconcile(NAME)
    assert status_writes(world) == 1
    assert stored(world)["state"] == "Active"

    world.ledger.release((NS, NAME), "t-19", "succeeded")
    await world.reconcile(NAME)
    clock.now += AGENT_IDLE_QUIET_SECONDS
    await world.reconcile(NAME)
    assert status_writes(world) == 2, "staying Idle is written"
    assert (stored(world)["state"], stored(world)["tasksSucceeded"]) == ("Idle", 20)


async def test_short_tasks_that_keep_coming_are_shown_within_the_max_lag(
    world: World, clock: Clock
) -> None:
    give_task(world, "t-0")
    await world.reconcile(NAME)
    number = 0
    while clock.now < 1000.0 + AGENT_STATUS_MAX_LAG_SECONDS + 1:
        number += 1
        world.ledger.release((NS, NAME), f"t-{number - 1}", "succeeded")
        give_task(world, f"t-{number}")
        clock.now += 0.5
        await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert stored(world)["currentTaskId"] != "t-0"


async def test_a_new_raw_state_alone_lands_once_it_held_still(world: World, clock: Clock) -> None:
    give_task(world, "t-1")
    await world.reconcile(NAME)
    assert status_writes(world) == 1
    add_report(world, "busy", 2)
    clock.now += 1.0
    await world.reconcile(NAME)
    assert status_writes(world) == 1, "the raw state alone is not written at once"
    assert stored(world)["rawState"] == "idle"

    clock.now += AGENT_STATUS_QUIET_SECONDS
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert stored(world)["rawState"] == "busy"


async def test_a_held_change_has_a_wake_up_for_when_it_is_due(world: World, clock: Clock) -> None:
    await world.reconcile(NAME)
    add_report(world, "ready", 2)
    await world.reconcile(NAME)
    assert status_writes(world) == 1
    timer = world.queue._timers[(NS, NAME)]
    loop_now = asyncio.get_running_loop().time()
    assert 0 < timer.when() - loop_now <= AGENT_STATUS_QUIET_SECONDS


async def test_raw_states_that_never_hold_still_land_after_the_max_lag(
    world: World, clock: Clock
) -> None:
    await world.reconcile(NAME)
    idle_words = ("ready", "finished", "done", "completed")  # each Idle, none the first one
    for n in range(int(AGENT_STATUS_MAX_LAG_SECONDS) + 2):
        add_report(world, idle_words[n % len(idle_words)], n + 2)
        clock.now += 1.0
        await world.reconcile(NAME)
    assert status_writes(world) == 2, "one write for a stream of raw-state changes"


async def test_an_error_is_written_at_once(world: World, clock: Clock) -> None:
    await world.reconcile(NAME)
    add_report(world, "error", 2, message="disk full")
    clock.now += 0.1
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    assert stored(world)["state"] == "Error"
    assert stored(world)["lastError"] == "disk full"


async def test_pausing_is_written_at_once(world: World, clock: Clock) -> None:
    await world.reconcile(NAME)
    body = world.kube.objects[NAME]
    world.seen(world.kube.put({**body, "spec": {**body["spec"], "paused": True}}))
    clock.now += 0.1
    await world.reconcile(NAME)
    assert status_writes(world) == 2
    ready = next(c for c in stored(world)["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Paused")


async def test_a_deleted_agent_leaves_nothing_held(world: World, clock: Clock) -> None:
    await world.reconcile(NAME)
    add_report(world, "ready", 2)
    await world.reconcile(NAME)
    assert (NS, NAME) in world.reconciler._held
    body = world.cache.get((NS, NAME))
    assert body is not None
    world.cache.delete(body)
    await world.reconciler.reconcile((NS, NAME))
    assert (NS, NAME) not in world.reconciler._held
