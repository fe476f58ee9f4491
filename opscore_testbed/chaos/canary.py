"""The canary: a run with three faults planted on purpose, which the suite must report,
exactly those three, and fail on. It proves the counters can see what they claim to.

- The simulated AgentKit delivers one task twice (to a correlated agent, so the second
  delivery cannot be read as another task's end): `duplicated` must be 1.
- One task's reports are lost (a reference agent's `active` and `idle`): its step times
  out and runs again under a new task id, against a promise of no redispatch:
  `redispatched_steps` must be 1.
- One workflow is deleted while it runs: it never finishes, `lost` must be 1.

Nothing else may show: no unexpected outcome, no agent left not Ready, no attempt that
never arrived. It is not among the default scenarios (it always fails);
`tests/integration/test_chaos_short.py` runs it in CI.
"""

from __future__ import annotations

import asyncio
import time

from opscore_kube import WORKFLOWS, KubeApiError
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.process_faults import agents_not_ready
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import Fault, Outcome, Row, make_row
from opscore_testbed.chaos.tally import tally
from opscore_testbed.chaos.workload import Planned, mixed_batch

#: A correlated worker (reports carry `opscore_task_id`) and a reference one.
DELIVERED_TWICE = "w06"
REPORTS_DROPPED = "w01"
#: The three problems the canary plants, as `report.problems` words them.
PLANTED = (
    "CANARY: lost=1",
    "CANARY: duplicated=1",
    "CANARY: redispatched_steps=1, promised <= 0",
)


async def _first_workflows_of(run: Run, agents: set[str], within: float) -> dict[str, str]:
    """agent -> the workflow of the first task it received, once each of `agents` has one."""
    deadline = time.monotonic() + within
    while True:
        seen: dict[str, str] = {}
        for task in (await run.sim.tasks()).get("tasks", []):
            name = task["agentName"]
            if name in agents and name not in seen:
                workflow = str((task.get("payload") or {}).get("workflow", ""))
                seen[name] = workflow.rpartition("/")[2]
        if seen.keys() == agents:
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"no task reached {sorted(agents - seen.keys())} in {within}s")
        await asyncio.sleep(0.1)


async def _delete_one_running(
    ch: Chaos, run: Run, batch: Batch, spare: set[str], within: float
) -> str:
    """Delete the first multi-step workflow seen `Running` (not in `spare`)."""
    candidates = [p for p in batch.planned if p.shape in ("chain", "fan-out")]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for item in candidates:
            if item.name in spare or item.name in batch.watcher.finished:
                continue
            try:
                body = await ch.kube.get(WORKFLOWS, run.namespace, item.name)
            except KubeApiError:
                continue  # not created yet
            if (body.get("status") or {}).get("phase") == "Running":
                await ch.kube.delete(WORKFLOWS, run.namespace, item.name)
                return item.name
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no multi-step workflow was seen Running within {within}s")


async def canary(ch: Chaos) -> Row:
    planned: list[Planned] = mixed_batch("canary", ch.sizes.workflows, ch.sizes.policy())
    fault = Fault()
    async with ch.running("canary") as run, Batch(ch.kube, run.namespace) as batch:
        await run.sim.patch(DELIVERED_TWICE, deliver_twice_next=1)
        await run.sim.patch(REPORTS_DROPPED, drop_reports_next=1)
        fault.begin()
        submitting = asyncio.create_task(batch.submit(planned, ch.sizes.rate))
        try:
            hit = await _first_workflows_of(run, {DELIVERED_TWICE, REPORTS_DROPPED}, 60.0)
            deleted = await _delete_one_running(ch, run, batch, set(hit.values()), 60.0)
        finally:
            await submitting
        fault.end()
        await batch.watcher.wait_for({p.name for p in planned} - {deleted}, ch.sizes.deadline_s)
        snapshot = await run.sim.tasks()
        stuck = await agents_not_ready(ch, run)
    counted = tally(batch.planned, batch.watcher.final, snapshot)
    fault.figures = {"recover_s": None, "deleted": deleted, "planted_on": hit}
    outcome = Outcome(counted, fault, batch, snapshot.get("tasks", []))
    return make_row(
        "CANARY",
        "planted: one task delivered twice, one task's reports lost, one workflow deleted",
        outcome,
        agents_not_ready_after=stuck,
        promises=(
            promise("redispatched_steps", 0),
            promise("undelivered_attempts", 0),
            promise("agents_not_ready_after", {}),
        ),
    )
