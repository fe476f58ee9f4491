"""F4-F6: AgentKit and the agents misbehave under load.

- F4: AgentKit answers 503 for a while, then recovers; and AgentKit restarts, forgetting
  every agent (the agents register again and get *new* ids, hence new Agent resources).
- F5: a third of the agents go silent mid-task: their steps time out (and the agents go
  Offline at their heartbeat timeout), and the steps move to healthy agents.
- F6: one agent's AgentKit endpoint takes 5 s per request: workflows not routed through it
  finish as fast as without it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from opscore_kube import AGENTS
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.fleet import SimAgent, set_agent_spec, standard_fleet
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import (
    Fault,
    Outcome,
    Row,
    make_row,
    sleep_until,
    under_fault,
    window,
)
from opscore_testbed.chaos.tally import tally
from opscore_testbed.chaos.timeline import percentile
from opscore_testbed.chaos.workload import Planned, mixed_batch, routed_batch

#: How long the simulated AgentKit stays down when it "restarts" (F4b).
RESTART_GAP_S = 3.0
#: F6's promise: the other workflows' p50 creation-to-completion time with the slow endpoint
#: is at most this multiple of the baseline round's (1.0 means "did not move"; the margin is
#: for the noise of shared cores, where the two rounds meet different neighbours' load).
ISOLATION_RATIO = 2.0
#: F5 silences these: one of each capability pair, reference and correlated agents.
SILENCED = ("w00", "w04", "w08")


async def f4_agentkit_outage(ch: Chaos) -> Row:
    planned = mixed_batch("f4", ch.sizes.workflows, ch.sizes.policy())
    down = ch.sizes.agentkit_down_s

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        began = time.monotonic()
        await sleep_until(began, window(ch) * 0.2)
        fault.begin()
        await run.sim.outage(down, "503")
        await asyncio.sleep(down)
        fault.end()

    async with ch.running("f4") as run:
        outcome = await under_fault(ch, run, planned, inject)
    # A dispatch AgentKit refused goes back to the queue without spending a retry.
    return make_row(
        "F4",
        f"AgentKit 503 for {down:g}s",
        outcome,
        promises=(promise("redispatched_steps", 0),),
    )


async def f4_agentkit_forgets(ch: Chaos) -> Row:
    planned = mixed_batch("f4b", ch.sizes.workflows, ch.sizes.policy())
    new_ids: dict[str, str] = {}  # simulated agent name -> the id it got when it came back

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        began = time.monotonic()
        await sleep_until(began, window(ch) * 0.3)
        fault.begin()
        fault.figures["forgotten"] = await run.sim.forget()
        await asyncio.sleep(RESTART_GAP_S)
        for agent in await run.sim.agents():
            await run.sim.register_again(agent["name"])
        fault.end()
        new_ids.update({a["name"]: a["agentId"] for a in await run.sim.agents()})

    async with ch.running("f4b") as run:
        outcome = await under_fault(ch, run, planned, inject)
        items = (await ch.kube.list(AGENTS, run.namespace))["items"]
    marked = sum(
        1
        for item in items
        for cond in (item.get("status") or {}).get("conditions") or []
        if cond.get("type") == "Ready" and cond.get("reason") == "NotRegisteredInAgentKit"
    )
    # Progress after the restart: tasks reaching the agents under their *new* ids.
    came_back = outcome.fault.ended
    first: dict[str, float] = {}
    for task in outcome.tasks:
        if task["agentId"] in new_ids.values() and task["received_epoch"] > came_back:
            name = task["agentName"]
            first[name] = min(first.get(name, task["received_epoch"]), task["received_epoch"])
    outcome.fault.figures["recover_s"] = (
        round(min(first.values()) - came_back, 2) if first else None
    )
    outcome.fault.figures["new_agents_working"] = f"{len(first)} of {len(new_ids)}"
    outcome.fault.figures["all_new_agents_working_s"] = (
        round(max(first.values()) - came_back, 2) if len(first) == len(new_ids) else None
    )
    outcome.fault.figures["new_agent_resources"] = sum(
        1 for item in items if (item.get("spec") or {}).get("agentId") in new_ids.values()
    )
    return make_row(
        "F4b",
        f"AgentKit restarted: forgets all agents, they re-register after {RESTART_GAP_S:g}s",
        outcome,
        old_agents_marked_not_registered=marked,
    )


def moved(tasks: list[dict[str, Any]], silent_ids: set[str], since: float) -> list[float]:
    """For each step a silenced agent received after `since`: the seconds until a healthy
    agent received the same step (steps never moved are left out)."""
    by_step: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for task in tasks:
        payload = task.get("payload") or {}
        by_step.setdefault((str(payload.get("workflow")), str(payload.get("step"))), []).append(
            task
        )
    delays = []
    for attempts in by_step.values():
        attempts.sort(key=lambda t: t["received_epoch"])
        for index, task in enumerate(attempts):
            if task["agentId"] not in silent_ids or task["received_epoch"] < since:
                continue
            later = [t for t in attempts[index + 1 :] if t["agentId"] not in silent_ids]
            if later:
                delays.append(later[0]["received_epoch"] - task["received_epoch"])
            break
    return delays


async def f5_silent_agents(ch: Chaos) -> Row:
    planned = mixed_batch("f5", ch.sizes.workflows, ch.sizes.policy())
    silent_ids: set[str] = set()

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        began = time.monotonic()
        await sleep_until(began, window(ch) * 0.25)
        ids = {a["name"]: a["agentId"] for a in await run.sim.agents()}
        fault.begin()
        for name in SILENCED:
            await run.sim.patch(name, silent=True)
            silent_ids.add(ids[name])
        fault.ended = fault.started  # the agents stay silent: recovery is measured below

    async with ch.running("f5") as run:
        # What a user running agents that report only around work sets: silence longer
        # than this is death (docs/agents.md, "Heartbeats").
        await set_agent_spec(
            ch.kube,
            run.namespace,
            list(run.agents.values()),
            heartbeatTimeoutSeconds=ch.sizes.heartbeat_s,
        )
        outcome = await under_fault(ch, run, planned, inject)
    delays = moved(outcome.tasks, silent_ids, outcome.fault.started - 2.0)
    outcome.fault.figures = {
        "recover_s": round(max(delays), 1) if delays else None,
        "silenced": f"{len(SILENCED)} of {len(run.agents)}",
        "steps_moved": len(delays),
        "moved_p50_s": round(statistics.median(delays), 1) if delays else None,
    }
    return make_row(
        "F5",
        f"{len(SILENCED)} agents silent mid-task (heartbeat timeout {ch.sizes.heartbeat_s}s)",
        outcome,
        promises=(promise("undelivered_attempts", 0),),
    )


def _seconds(batch: Batch, items: list[Planned]) -> list[float]:
    """Created -> seen finished, for each of `items` that finished."""
    out = []
    for item in items:
        created, finished = batch.created.get(item.name), batch.finished_at(item.name)
        if created is not None and finished is not None:
            out.append(finished - created)
    return out


def _p(values: list[float], q: float) -> float | None:
    value = percentile(values, q)
    return round(value, 2) if value is not None else None


def _interleave(fast: list[Planned], routed: list[Planned]) -> list[Planned]:
    """The routed workflows spread evenly through the fast ones."""
    step = max(1, len(fast) // max(1, len(routed)))
    out: list[Planned] = []
    pending = list(routed)
    for index, item in enumerate(fast):
        out.append(item)
        if pending and index % step == step // 2:
            out.append(pending.pop(0))
    return out + pending


async def f6_one_slow_endpoint(ch: Chaos) -> Row:
    """Two rounds on one stack: the slow agent's endpoint at full speed (the baseline),
    then at `slow_seconds` per request; the other workflows' times are compared."""
    slow = ch.sizes.slow_seconds
    fleet = [*standard_fleet(), SimAgent("s00", ("slowpath",))]
    half = max(10, ch.sizes.workflows // 2)
    slow_count = max(2, half // 15)
    timings: dict[str, dict[str, list[float]]] = {}
    fault = Fault()
    async with ch.running("f6", fleet) as run:
        async with Batch(ch.kube, run.namespace) as batch:
            for label, delay in (("base", 0.0), ("slow", slow)):
                await run.sim.patch("s00", dispatch_delay_seconds=delay)
                fast = mixed_batch(f"f6{label}", half, ch.sizes.policy())
                routed = routed_batch(
                    f"f6{label}-slowpath", slow_count, "slowpath", ch.sizes.policy()
                )
                if label == "slow":
                    fault.begin()
                await batch.submit(_interleave(fast, routed), ch.sizes.rate)
                await batch.wait(ch.sizes.deadline_s)
                if label == "slow":
                    fault.end()
                timings[label] = {"fast": _seconds(batch, fast), "slow": _seconds(batch, routed)}
            snapshot = await run.sim.tasks()
        counted = tally(batch.planned, batch.watcher.final, snapshot)

    def change(kind: str, q: float) -> str:
        return f"{_p(timings['base'][kind], q)} -> {_p(timings['slow'][kind], q)}"

    base_p50, slow_p50 = _p(timings["base"]["fast"], 0.5), _p(timings["slow"]["fast"], 0.5)
    fault.figures = {
        "recover_s": None,
        "other_p50_ratio": round(slow_p50 / base_p50, 2) if base_p50 and slow_p50 else None,
        "other_p50_s": change("fast", 0.5),
        "other_p95_s": change("fast", 0.95),
        "slowpath_p50_s": change("slow", 0.5),
    }
    outcome = Outcome(counted, fault, batch, snapshot.get("tasks", []))
    row = make_row(
        "F6",
        f"one agent's AgentKit endpoint {slow:g}s per request (baseline -> slow)",
        outcome,
        promises=(
            promise("other_p50_ratio", ISOLATION_RATIO),
            promise("undelivered_attempts", 0),
        ),
    )
    row["drain_s"] = None  # the fault lasts the whole second round
    return row
