"""F11-F13: Ops-Core deployed for high availability (two leader-elected operators, two
sidecar replicas behind HAProxy, as deploy/instance runs them) loses a replica under load.

- F11: the leader is SIGKILLed every `kill_every_s` while the batch runs, and restarted at
  once as a standby (the kubelet restarting the container). Failover is from the kill to
  the new leader's first dispatch; the target is lease duration + 2 s.
- F12: split brain. The leader is SIGSTOPped past its lease, the standby takes over, and
  the old leader is resumed: it must send nothing (no dispatch line in its log after it
  woke) and exit, and the run must finish with no task delivered twice.
- F13: one sidecar replica is SIGKILLed in a burst of reports while the other serves, and
  restarted 2 s later. Reports lost must be at most those in flight on the killed replica
  (one per agent at most: the SDK sends one report at a time), and no Agent may be left
  not Ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opscore_kube import LEASES, KubeApiError
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.fleet import Simulator, agents_ready, standard_fleet
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.process_faults import LOSSY, _burst, _reports_failed, agents_not_ready
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import Fault, Row, make_row, sleep_until, under_fault, window
from opscore_testbed.chaos.timeline import first_task_after
from opscore_testbed.chaos.workload import mixed_batch
from opscore_testbed.processes import wait_until
from opscore_testbed.replicas import LEASE_NAME, HighlyAvailableStack, LeaseTimes
from opscore_testbed.stack import OpsCoreStack, StackOptions

#: Lease times per suite size: the operator's defaults for the reported run, shortened
#: for CI so that a takeover costs seconds.
TIMES = {"full": LeaseTimes(), "short": LeaseTimes(lease=4.0, renew_deadline=3.0, retry=0.5)}


@dataclass
class HaRun:
    run: Run
    ha: HighlyAvailableStack
    times: LeaseTimes


@contextlib.asynccontextmanager
async def running_ha(ch: Chaos, label: str) -> AsyncIterator[HaRun]:
    """A namespace with the HA deployment and the standard fleet registered and Ready."""
    namespace = ch.namespace(label)
    stack = OpsCoreStack(
        ch.cp,
        namespace,
        ch.log_dir / namespace,
        StackOptions(agents=(), sim_args=("--seed", str(ch.rng.randrange(1 << 30)))),
    )
    times = TIMES["short" if ch.sizes.workflows < 100 else "full"]
    ha = HighlyAvailableStack(stack, operators=2, sidecars=2, times=times)
    await asyncio.to_thread(ha.start)
    sim = Simulator(stack.sim_url)
    try:
        await sim.add(standard_fleet())
        names = await agents_ready(ch.kube, namespace, sim)
        yield HaRun(Run(stack=stack, sim=sim, namespace=namespace, agents=names), ha, times)
    finally:
        await sim.aclose()
        await asyncio.to_thread(ha.stop)
        ch.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


async def _holder(ch: Chaos, namespace: str) -> str:
    try:
        lease = await ch.kube.get(LEASES, namespace, LEASE_NAME)
    except KubeApiError:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def _new_holder(ch: Chaos, namespace: str, old: str, within: float) -> tuple[str, float]:
    """Poll the Lease until someone other than `old` holds it; (holder, epoch seen)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        holder = await _holder(ch, namespace)
        if holder and holder != old:
            return holder, time.time()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no new leader within {within:g}s of losing {old!r}")


def _dispatch_lines_after(log: Path, moment: float) -> int:
    """'dispatching task' lines the process logged after `moment` (epoch seconds)."""
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message", "").startswith("dispatching task"):
            at = datetime.fromisoformat(str(entry.get("timestamp"))).timestamp()
            count += at > moment
    return count


async def f11_leader_sigkill(ch: Chaos) -> Row:
    planned = mixed_batch("f11", ch.sizes.workflows, ch.sizes.policy())
    failovers: list[float] = []

    async with running_ha(ch, "f11") as hr:
        every = max(8.0, hr.times.lease + 5.0)  # 20 s at the default lease
        most = 3 if ch.sizes.workflows >= 100 else 2

        async def inject(run: Run, batch: Batch, fault: Fault) -> None:
            began = time.monotonic()
            fault.begin()
            for kill in range(most):
                await sleep_until(began, every * kill + every / 2)
                if kill and not batch.unfinished():
                    break
                leader = await _holder(ch, run.namespace)
                killed = time.time()
                hr.ha.operators.sigkill(leader)
                # Back as a new pod (a new name: it cannot take its old Lease over at
                # once), so what is measured is the standby's takeover.
                await asyncio.to_thread(hr.ha.operators.start_replica, f"{leader}-{kill + 1}")
                _, took_over = await _new_holder(
                    ch, run.namespace, leader, within=hr.times.lease * 3
                )
                first = None
                waited = time.monotonic()
                while first is None and time.monotonic() - waited < 30 and batch.unfinished():
                    first = first_task_after((await run.sim.tasks()).get("tasks", []), took_over)
                    await asyncio.sleep(0.1)
                if first is not None:
                    failovers.append(first - killed)
            fault.end()

        outcome = await under_fault(ch, hr.run, planned, inject, failure_reasons=LOSSY)
    ordered = sorted(failovers)
    return make_row(
        "F11",
        f"operator leader SIGKILLed every {every:g}s (lease {hr.times.lease:g}s), restarted",
        outcome,
        kills=len(failovers),
        failover_p50_s=round(ordered[len(ordered) // 2], 2) if ordered else None,
        failover_max_s=round(ordered[-1], 2) if ordered else None,
        promises=(
            promise("kills", 2 if most == 3 else 1, at_least=True),
            # The target: a standby takes a dead leader's Lease and dispatches within a
            # lease duration + 2 s of the kill.
            promise("failover_max_s", hr.times.lease + 2.0),
        ),
    )


async def f12_split_brain(ch: Chaos) -> Row:
    planned = mixed_batch("f12", ch.sizes.workflows, ch.sizes.policy())
    figures: dict[str, object] = {}

    async with running_ha(ch, "f12") as hr:

        async def inject(run: Run, batch: Batch, fault: Fault) -> None:
            began = time.monotonic()
            await sleep_until(began, window(ch) * 0.3)
            await _burst(run, at_least=3)
            leader = await _holder(ch, run.namespace)
            fault.begin()
            hr.ha.operators.pause(leader)
            try:
                successor, took_over = await _new_holder(
                    ch, run.namespace, leader, within=hr.times.lease * 3
                )
                await asyncio.sleep(1.0)  # the successor dispatches while the old one sleeps
            finally:
                hr.ha.operators.resume(leader)
            resumed = time.time()
            fault.end()
            process = hr.ha.operators.processes[leader]
            await asyncio.to_thread(
                wait_until, lambda: not process.is_running(), timeout=15, what="it to exit"
            )
            figures["takeover_s"] = round(took_over - fault.started, 2)
            figures["old_leader_exit_code"] = process.returncode
            figures["old_leader_dispatches_after_waking"] = _dispatch_lines_after(
                process.log_path, resumed
            )
            figures["successor"] = successor

        outcome = await under_fault(ch, hr.run, planned, inject, failure_reasons=LOSSY)
    return make_row(
        "F12",
        f"leader SIGSTOPped past its lease ({hr.times.lease:g}s), standby took over, resumed",
        outcome,
        **figures,
        promises=(
            promise("old_leader_exit_code", 3),  # "lost the Lease", not a crash
            promise("old_leader_dispatches_after_waking", 0),
        ),
    )


async def f13_sidecar_replica_sigkill(ch: Chaos) -> Row:
    planned = mixed_batch("f13", ch.sizes.workflows, ch.sizes.policy())
    figures: dict[str, int] = {}

    async with running_ha(ch, "f13") as hr:

        async def inject(run: Run, batch: Batch, fault: Fault) -> None:
            began = time.monotonic()
            await sleep_until(began, window(ch) * 0.4)
            await _burst(run, at_least=4)
            failed_before = await _reports_failed(run)
            fault.begin()
            hr.ha.kill_sidecar(0)
            await asyncio.sleep(ch.sizes.sidecar_down_s)
            await asyncio.to_thread(hr.ha.start_sidecar, 0)
            fault.end()
            figures["reports_lost"] = await _reports_failed(run) - failed_before

        outcome = await under_fault(ch, hr.run, planned, inject, failure_reasons=LOSSY)
        stuck = await agents_not_ready(ch, hr.run)
    return make_row(
        "F13",
        "one of two sidecar replicas SIGKILLed in a report burst, restarted",
        outcome,
        agents_not_ready_after=stuck,
        **figures,
        promises=(
            # The SDK sends one report at a time: at most one per agent was in flight.
            promise("reports_lost", len(standard_fleet())),
            promise("agents_not_ready_after", {}),
        ),
    )
