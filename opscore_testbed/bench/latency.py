"""S (one workflow at a time on an idle system) and B3 (report -> next step under load)."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from typing import Any

import httpx

from opscore_testbed.bench.apimetrics import apiserver_latency, histogram_delta, share_over
from opscore_testbed.bench.common import Bench, Row, pct
from opscore_testbed.bench.workload import (
    CompletionWatcher,
    create_all,
    create_at_rate,
    three_steps,
)

WF_STATUS = "workflows/status"


async def b3_latency(bench: Bench) -> list[Row]:
    """Sidecar accepted an agent's final report -> the simulator received the next step."""
    rows = []
    for reports_per_s in (10, 50):
        ns = bench.namespace(f"b3-{reports_per_s}")
        with bench.stack(ns, bench.sizes.b1_agents) as stack:
            await bench.ready_agents(ns, bench.sizes.b1_agents)
            watcher = CompletionWatcher(bench.kube, ns)
            watcher.start()
            # Each step brings two reports (active, idle): steps/s = reports/s / 2.
            wf_rate = reports_per_s / 2 / 3
            count = max(3, int(wf_rate * bench.sizes.b3_seconds))
            bodies = [three_steps(f"lat-{i:05d}") for i in range(count)]
            before = await apiserver_latency(bench.kube, verb="PATCH", resource=WF_STATUS)
            created = await create_at_rate(bench.kube, ns, bodies, wf_rate)
            await watcher.wait_for(set(created), within=120)
            after = await apiserver_latency(bench.kube, verb="PATCH", resource=WF_STATUS)
            server = histogram_delta(after, before)
            await watcher.stop()
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                tasks = (await client.get(f"{stack.sim_url}/sim/tasks")).json()
        found = watcher.problems(set(created), within=120)
        gaps = _advance_gaps(tasks["tasks"])
        bench.series[f"b3_{reports_per_s}_ms"] = [g * 1000 for g in gaps]
        rows.append(
            {
                "scenario": f"B3 step-advance @{reports_per_s} reports/s",
                "problems": found,
                "transitions": len(gaps),
                "p50_ms": round(pct(gaps, 50) * 1000, 1),
                "p95_ms": round(pct(gaps, 95) * 1000, 1),
                "p99_ms": round(pct(gaps, 99) * 1000, 1),
                "max_ms": round(max(gaps, default=float("nan")) * 1000, 1),
                # Every gap holds one Workflow status PATCH (the dispatch written ahead):
                # how often kube-apiserver itself took over 25 / 50 ms to answer one.
                "apiserver_workflow_patch_over_25ms_pct": round(share_over(server, 0.025) * 100, 1),
                "apiserver_workflow_patch_over_50ms_pct": round(share_over(server, 0.05) * 100, 1),
            }
        )
    return rows


async def s_sequential(bench: Bench, runs: int = 20) -> Row:
    """One 3-step workflow at a time on an idle system: create -> Succeeded as the API
    server reports it, and sidecar-accepted final report -> next step received."""
    ns = bench.namespace("s")
    totals: list[float] = []
    names: set[str] = set()
    with bench.stack(ns, 3) as stack:
        await bench.ready_agents(ns, 3)
        watcher = CompletionWatcher(bench.kube, ns)
        watcher.start()
        for i in range(runs):
            name = f"seq-{i:03d}"
            started = time.time()
            await create_all(bench.kube, ns, [three_steps(name)])
            names.add(name)
            if not await watcher.wait_for({name}, within=60):
                break  # the row's problems say so; the next run would only wait as long
            totals.append(watcher.finished[name][1] - started)
        await watcher.stop()
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            tasks = (await client.get(f"{stack.sim_url}/sim/tasks")).json()["tasks"]
    gaps = _advance_gaps(tasks)
    return {
        "scenario": f"S sequential {runs}x 3-step (idle system)",
        "problems": watcher.problems(names, within=60),
        "apply_to_succeeded_p50_ms": round(pct(totals, 50) * 1000, 1),
        "apply_to_succeeded_max_ms": round(max(totals) * 1000, 1),
        "step_advance_p50_ms": round(pct(gaps, 50) * 1000, 1),
        "step_advance_p95_ms": round(pct(gaps, 95) * 1000, 1),
        "transitions": len(gaps),
    }


def _advance_gaps(tasks: list[dict[str, Any]]) -> list[float]:
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_session[task["opscore_session_id"]].append(task)
    gaps: list[float] = []
    for session in by_session.values():
        session.sort(key=lambda t: t["received_epoch"])
        for prev, nxt in itertools.pairwise(session):
            if "final_report_acked_epoch" in prev:
                gaps.append(nxt["received_epoch"] - prev["final_report_acked_epoch"])
    return gaps
