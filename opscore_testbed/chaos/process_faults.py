"""F1-F3: Ops-Core's own processes and the API server die under load.

- F1: the operator is SIGKILLed three times at random moments and restarted at once (as
  the kubelet restarts a crashed container).
- F2: the sidecar is SIGKILLed during a burst of reports and restarted. Agents' SDK never
  retries, so reports sent meanwhile are gone: their steps finish through their
  `timeoutSeconds` and `retries`.
- F3: kube-apiserver stops for a while and comes back; operator and sidecar are *not*
  restarted (kopf watches again, our client retries, the sidecar answers 503 meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from opscore_kube import AGENTS
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import Fault, Row, make_row, sleep_until, under_fault, window
from opscore_testbed.chaos.timeline import (
    delivery_lags,
    first_ack_after,
    first_task_after,
    percentile,
)
from opscore_testbed.chaos.workload import mixed_batch

#: When a report is lost, a doomed step may end in a timeout rather than the error report.
LOSSY = frozenset({"TaskFailed", "TimedOut"})


def kill_moments(ch: Chaos, span: float, count: int = 3) -> list[float]:
    """`count` random moments in (0, span), one in each of `count` equal slots, kept off the
    slots' edges so that a restart finishes before the next kill."""
    slot = span / count
    return [i * slot + ch.rng.uniform(0.15 * slot, 0.85 * slot) for i in range(count)]


async def f1_operator_sigkill(ch: Chaos) -> Row:
    planned = mixed_batch("f1", ch.sizes.workflows, ch.sizes.policy())
    moments = kill_moments(ch, window(ch))
    kills: list[tuple[float, float]] = []

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        began = time.monotonic()
        for moment in moments:
            await sleep_until(began, moment)
            killed = time.time()
            await asyncio.to_thread(run.stack.restart_operator, kill=True)
            kills.append((killed, time.time()))
        fault.started, fault.ended = kills[0][0], kills[-1][1]

    async with ch.running("f1") as run:
        outcome = await under_fault(ch, run, planned, inject, failure_reasons=LOSSY)
    # The new operator's first dispatch (tasks arriving before it was up were sent by
    # the killed one and still on their way through AgentKit).
    next_dispatch = [
        (first_task_after(outcome.tasks, up) or float("nan")) - killed for killed, up in kills
    ]
    outcome.fault.figures = {
        "recover_s": round(max(next_dispatch), 2),
        "kills": len(kills),
        "kill_to_healthy_s": [round(up - killed, 2) for killed, up in kills],
        "kill_to_next_dispatch_s": [round(d, 2) for d in next_dispatch],
    }
    lags = delivery_lags(outcome.batch.watcher.final, outcome.tasks)
    for q in (0.5, 0.99):
        lag = percentile(lags, q)
        outcome.fault.figures[f"decision_to_agent_p{int(q * 100)}_ms"] = (
            round(lag * 1000) if lag is not None else None
        )
    # A restart never re-sends (a task id is written before it is sent): no step reaches an
    # agent under a second task id. (A kill inside the crash window delays its step to its
    # timeout, under a new attempt that is the only one delivered: not a redispatch.)
    return make_row(
        "F1",
        "operator SIGKILL x3, restarted",
        outcome,
        promises=(promise("redispatched_steps", 0),),
    )


async def _burst(run: Run, at_least: int, within: float = 10.0) -> None:
    """Wait until the agents are busy: `at_least` tasks received in the last second."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        tasks = (await run.sim.tasks()).get("tasks", [])
        now = time.time()
        if sum(1 for t in tasks if now - t["received_epoch"] < 1.0) >= at_least:
            return
        await asyncio.sleep(0.1)


async def _reports_failed(run: Run) -> int:
    return sum(int(agent["reports_failed"]) for agent in await run.sim.agents())


async def agents_not_ready(ch: Chaos, run: Run, settle_s: float = 10.0) -> dict[str, str]:
    """Agents still not Ready `settle_s` after the batch (the operator writes an Agent's
    derived status at most about once a second), and why: a lost `idle` can leave one
    `Active`, a leaked reservation `Busy`."""
    deadline = time.monotonic() + settle_s
    while True:
        items = (await ch.kube.list(AGENTS, run.namespace))["items"]
        out = {}
        for item in items:
            for cond in (item.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "Ready" and cond.get("status") != "True":
                    name = item["spec"].get("agentName", item["metadata"]["name"])
                    out[name] = str(cond.get("reason"))
        if not out or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.5)


async def f2_sidecar_sigkill(ch: Chaos) -> Row:
    planned = mixed_batch("f2", ch.sizes.workflows, ch.sizes.policy())

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        began = time.monotonic()
        await sleep_until(began, window(ch) * 0.4)
        await _burst(run, at_least=4)
        failed_before = await _reports_failed(run)
        sidecar = run.stack.sidecar
        assert sidecar is not None
        fault.begin()
        sidecar.kill()
        await asyncio.sleep(ch.sizes.sidecar_down_s)
        await asyncio.to_thread(run.stack.start_sidecar)
        fault.end()
        fault.figures["down_s"] = ch.sizes.sidecar_down_s
        fault.figures["reports_lost"] = await _reports_failed(run) - failed_before

    async with ch.running("f2") as run:
        outcome = await under_fault(ch, run, planned, inject, failure_reasons=LOSSY)
        stuck = await agents_not_ready(ch, run)
    # Progress after the restart is a report getting through again (the operator kept
    # dispatching all along; what stopped is the agents' news).
    acked = first_ack_after(outcome.tasks, outcome.fault.ended)
    outcome.fault.figures["recover_s"] = (
        round(acked - outcome.fault.ended, 2) if acked is not None else None
    )
    return make_row(
        "F2",
        "sidecar SIGKILL in a report burst, restarted",
        outcome,
        step_policy=f"timeout {ch.sizes.step_timeout_s}s, {ch.sizes.retries} retries",
        agents_not_ready_after=stuck,
        promises=(promise("agents_not_ready_after", {}), promise("undelivered_attempts", 0)),
    )


async def _sidecar_answer(run: Run) -> str:
    """What an agent gets from the sidecar now (a first report from an unknown agent)."""
    body = {
        "agentId": "chaos-probe",
        "timestamp": datetime.now(UTC).isoformat(),
        "state": "idle",
        "details": {},
    }
    headers = {"Authorization": f"Bearer {run.stack.options.api_key}"}
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        response = await client.post(
            f"{run.stack.sidecar_url}/v1/opscore/agent/chaos-probe/state",
            json=body,
            headers=headers,
        )
    retry_after = response.headers.get("Retry-After")
    return f"{response.status_code}" + (f" Retry-After={retry_after}" if retry_after else "")


async def f3_apiserver_down(ch: Chaos) -> Row:
    planned = mixed_batch("f3", ch.sizes.workflows, ch.sizes.policy())
    down = ch.sizes.apiserver_down_s

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        assert run.stack.operator is not None
        assert run.stack.sidecar is not None
        pids = (run.stack.operator.pid, run.stack.sidecar.pid)
        began = time.monotonic()
        await sleep_until(began, window(ch) * 0.3)
        fault.begin()
        await asyncio.to_thread(ch.cp.stop_apiserver, kill=True)
        stopped = time.monotonic()
        await asyncio.sleep(min(3.0, down / 2))  # past the sidecar's own retries
        fault.figures["sidecar_answer_while_down"] = await _sidecar_answer(run)
        await sleep_until(stopped, down)
        restarting = time.monotonic()
        await asyncio.to_thread(ch.cp.start_apiserver)
        fault.end()
        fault.figures["apiserver_start_s"] = round(time.monotonic() - restarting, 1)
        running = run.stack.operator.is_running() and run.stack.sidecar.is_running()
        same = pids == (run.stack.operator.pid, run.stack.sidecar.pid)
        fault.figures["operator_sidecar_restarted"] = not (running and same)

    async with ch.running("f3") as run:
        outcome = await under_fault(ch, run, planned, inject, failure_reasons=LOSSY)
        stuck = await agents_not_ready(ch, run)
    return make_row(
        "F3",
        f"kube-apiserver SIGKILLed, down {down:g}s, restarted",
        outcome,
        agents_not_ready_after=stuck,
        promises=(
            promise("operator_sidecar_restarted", False),
            promise("agents_not_ready_after", {}),
        ),
    )
