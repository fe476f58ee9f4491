"""F10: faults that take effect while the caller sees a failure, at a steady 1%.

- 1% of the operator's and the sidecar's API writes take effect and then time out, and 1%
  fail before taking effect (`opscore_kube.faults`, enabled in those two processes only);
- 1% of dispatches are scheduled by the simulated AgentKit and then answered only after
  the operator's dispatch timeout (a stall), and 1% are scheduled and then have their
  answer cut off (the connection drops mid-answer). Either way the operator's client
  sends the same body again (and, once its tries are spent, the engine sends the same
  task id again): AgentKit has no idempotency key, so the agent may get it twice.

Nothing may be lost, and every duplicate must be one docs/reliability.md predicts: a
task id delivered twice is allowed only if its dispatch was one the simulator stalled or
cut off ("at least once, same task id"); any other is a problem. Redispatched steps (a
lost write or report ending in a step timeout) are counted and shown.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from opscore_kube.faults import ENV as KUBE_FAULTS
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.process_faults import LOSSY
from opscore_testbed.chaos.scenario import Fault, Row, make_row, under_fault
from opscore_testbed.chaos.tally import predicted_duplicates
from opscore_testbed.chaos.workload import mixed_batch

RATE = 0.01
#: The operator's dispatch timeout in this scenario, and how long a stalled dispatch waits
#: before answering (past it, so the client gives up on that try and sends again).
DISPATCH_TIMEOUT_S = 3.0
STALL_S = 4.0
WRITE_FAULTS = f"after={RATE},before={RATE}"


def _count(log: Path, marker: str) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text(errors="replace").splitlines() if marker in line)


async def f10_ambiguous_faults(ch: Chaos) -> Row:
    planned = mixed_batch("f10", ch.sizes.workflows, ch.sizes.policy())

    async def inject(run: Run, batch: Batch, fault: Fault) -> None:
        # The write faults are on from the processes' start; these from the first workflow.
        # Both stay on to the end: the row's timings are from here.
        fault.begin()
        await run.sim.dispatch_faults(stall_rate=RATE, stall_seconds=STALL_S, reset_rate=RATE)
        fault.end()

    operator_env = {
        KUBE_FAULTS: WRITE_FAULTS,
        "OPSCORE_DISPATCH_TIMEOUT_SECONDS": str(DISPATCH_TIMEOUT_S),
    }
    sidecar_env = {KUBE_FAULTS: WRITE_FAULTS}
    async with ch.running("f10", operator_env=operator_env, sidecar_env=sidecar_env) as run:
        outcome = await under_fault(ch, run, planned, inject, failure_reasons=LOSSY)
        snapshot = await run.sim.tasks()
        logs = {name: run.stack.log_dir / f"{name}.log" for name in ("operator", "sidecar")}
        injected = {
            f"{name}_writes_{where}": await asyncio.to_thread(
                _count, log, f"injected API write fault {where}"
            )
            for name, log in logs.items()
            for where in ("after", "before")
        }
    stalled = set(snapshot.get("stalled_task_ids", []))
    cut_off = set(snapshot.get("reset_task_ids", []))
    row = make_row(
        "F10",
        f"{RATE:.0%} of API writes time out after taking effect, {RATE:.0%} fail before; "
        f"{RATE:.0%} of dispatches scheduled then stalled past the dispatch timeout, "
        f"{RATE:.0%} scheduled then cut off",
        outcome,
        dispatches_stalled=len(stalled),
        dispatches_cut_off=len(cut_off),
        duplicated_predicted=predicted_duplicates(outcome.tally.duplicated, stalled | cut_off),
    )
    row.update(injected)
    return row
