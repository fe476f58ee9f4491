"""The benchmark scenarios B0-B5 (issue 8). Each returns one result row (a flat dict whose
keys carry their units) and, where useful, series for the chart."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from opscore_kube import WORKFLOWS
from opscore_kube.transport import AiohttpTransport
from opscore_operator.agent_reconciler import AGENT_STATUS_QUIET_SECONDS
from opscore_testbed.bench.apimetrics import write_counts
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.workload import (
    CompletionWatcher,
    create_all,
    create_at_rate,
    one_step,
    three_steps,
)
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.stack import OpsCoreStack, StackOptions

Row = dict[str, Any]


@dataclass
class Sizes:
    """How big each scenario runs: `smoke` keeps CI quick, `full` is the reported run."""

    b0_seconds: float
    b1_one_step: int
    b1_three_step: int
    b1_agents: int
    b2_rates: list[float]
    b2_seconds: float
    b3_seconds: float
    b4_rates: list[float]
    b4_seconds: float
    b4_agents: int
    b5_objects: int


SIZES = {
    "smoke": Sizes(2, 40, 10, 5, [2, 4], 4, 4, [20, 40], 3, 10, 100),
    "full": Sizes(
        10,
        500,
        200,
        20,
        [4, 8, 12, 16, 20, 25, 30],
        20,
        20,
        [50, 100, 200, 300, 400, 500, 600, 800],
        10,
        100,
        10_000,
    ),
}


@dataclass
class Bench:
    cp: ControlPlane
    kube: BenchKube
    sizes: Sizes
    log_dir: Path
    series: dict[str, Any] = field(default_factory=dict)

    def namespace(self, label: str) -> str:
        name = f"bench-{label.lower()}-{uuid.uuid4().hex[:6]}"
        self.cp.kubectl("create", "namespace", name)
        return name

    def stack(self, namespace: str, agents: int, **options: Any) -> OpsCoreStack:
        specs = tuple(f"b{i:03d}:bench" for i in range(agents))
        return OpsCoreStack(
            self.cp,
            namespace,
            self.log_dir / namespace,
            StackOptions(agents=specs, task_seconds=0.0, **options),
        )

    async def ready_agents(self, namespace: str, count: int, within: float = 120) -> None:
        from opscore_kube import AGENTS

        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            items = (await self.kube.list(AGENTS, namespace))["items"]
            ready = [
                a
                for a in items
                if "bench" in (a.get("spec") or {}).get("capabilities", [])
                and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (a.get("status") or {}).get("conditions", [])
                )
            ]
            if len(ready) >= count:
                return
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{count} bench agents not Ready within {within}s")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- B0 ------------------------------------------------------------------------------------


async def b0_ceiling(bench: Bench) -> Row:
    """The API server's own rate of Workflow status merge-patches from a tight client."""
    ns = bench.namespace("b0")
    names = [f"ceiling-{i}" for i in range(64)]
    await create_all(bench.kube, ns, (one_step(n, "none") for n in names))
    done = 0
    stop_at = time.monotonic() + bench.sizes.b0_seconds
    latencies: list[float] = []

    async def worker(name: str) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            started = time.perf_counter()
            await bench.kube.patch(
                WORKFLOWS, ns, name, {"status": {"message": f"patch {i}"}}, status=True
            )
            latencies.append(time.perf_counter() - started)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in names))
    elapsed = time.monotonic() - started
    return {
        "scenario": "B0 ceiling",
        "status_patches_per_s": round(done / elapsed, 1),
        "patch_p50_ms": round(_pct(latencies, 50) * 1000, 1),
        "patch_p99_ms": round(_pct(latencies, 99) * 1000, 1),
        "concurrency": len(names),
        "duration_s": round(elapsed, 1),
    }


# -- B1 ------------------------------------------------------------------------------------


# Normal Events off (Warnings only): what B1 costs without the one outcome Event per run.
WARNINGS_ONLY = {"OPSCORE_POST_NORMAL_EVENTS": "false"}


async def b1_drain(bench: Bench, ceiling: float | None) -> list[Row]:
    rows = []
    runs: list[tuple[int, int, dict[str, str]]] = [
        (1, bench.sizes.b1_one_step, {}),
        (3, bench.sizes.b1_three_step, {}),
        (1, bench.sizes.b1_one_step, WARNINGS_ONLY),
    ]
    for steps, count, operator_env in runs:
        label = ", warnings-only events" if operator_env else ""
        ns = bench.namespace(f"b1-{steps}{'-w' if operator_env else ''}")
        with bench.stack(ns, bench.sizes.b1_agents, operator_env=operator_env):
            await bench.ready_agents(ns, bench.sizes.b1_agents)
            watcher = CompletionWatcher(bench.kube, ns)
            watcher.start()
            make = one_step if steps == 1 else three_steps
            bodies = [make(f"wf-{i:05d}") for i in range(count)]
            before = await write_counts(bench.kube)
            started = time.time()
            created = await create_all(bench.kube, ns, bodies)
            submitted = time.time()
            ok = await watcher.wait_for(set(created), within=600)
            finished_at = max(t for _, t in watcher.finished.values()) if ok else time.time()
            # Count the trailing writes too (an idle agent's last routine status change).
            await _writes_quiet(bench.kube, quiet=AGENT_STATUS_QUIET_SECONDS + 2, within=60)
            writes = await write_counts(bench.kube) - before
            await watcher.stop()
        drain = finished_at - started
        total_steps = count * steps
        writes_by_op = writes.total - count  # the benchmark's own creates are not Ops-Core's
        succeeded = sum(1 for p, _ in watcher.finished.values() if p == "Succeeded")
        rows.append(
            {
                "scenario": f"B1 drain {count}x{steps}-step{label}",
                "problems": watcher.problems(set(created), within=600),
                "workflows": count,
                "succeeded": succeeded,
                "agents": bench.sizes.b1_agents,
                "submit_s": round(submitted - started, 1),
                "drain_s": round(drain, 1),
                "workflows_per_min": round(count / drain * 60),
                "steps_per_s": round(total_steps / drain, 1),
                "api_writes_per_step": round(writes_by_op / total_steps, 2),
                "api_writes_by_resource": dict(writes.by_resource),
                "writes_per_s": round(writes.total / drain, 1),
                "writes_vs_b0_ceiling": round(writes.total / drain / ceiling, 2)
                if ceiling
                else None,
            }
        )
        if operator_env:
            continue  # the chart shows the default configuration
        bench.series[f"b1_{steps}_completions"] = sorted(
            t - started for _, t in watcher.finished.values()
        )
    return rows


# -- B2 ------------------------------------------------------------------------------------


#: How long B2 waits, after its last step, for the backlog it built to drain.
B2_DRAIN_S = 300.0


async def b2_rate(bench: Bench) -> Row:
    """Raise the submission rate until a backlog builds; the highest sustained rate wins."""
    ns = bench.namespace("b2")
    best = 0.0
    steps: list[dict[str, float]] = []
    everything: set[str] = set()
    with bench.stack(ns, bench.sizes.b1_agents):
        await bench.ready_agents(ns, bench.sizes.b1_agents)
        watcher = CompletionWatcher(bench.kube, ns)
        watcher.start()
        for rate in bench.sizes.b2_rates:
            count = int(rate * bench.sizes.b2_seconds)
            bodies = [one_step(f"r{int(rate)}-{i:05d}") for i in range(count)]
            created = await create_at_rate(bench.kube, ns, bodies, rate)
            everything.update(created)
            # Sustained: everything submitted in the window finishes within 2 s of its end.
            ok = await watcher.wait_for(set(created), within=2.0 + 1.0)
            backlog = len(set(created) - watcher.finished.keys())
            steps.append({"rate_per_s": rate, "backlog": backlog})
            if not ok:
                break
            best = rate
        # The backlog is the measurement, but every workflow must still end Succeeded.
        await watcher.wait_for(everything, within=B2_DRAIN_S)
        await watcher.stop()
    bench.series["b2_steps"] = steps
    return {
        "scenario": "B2 increasing rate",
        "problems": watcher.problems(everything, within=B2_DRAIN_S),
        "max_sustained_workflows_per_min": round(best * 60),
        "steps": steps,
        "window_s": bench.sizes.b2_seconds,
    }


# -- B3 ------------------------------------------------------------------------------------


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
            created = await create_at_rate(bench.kube, ns, bodies, wf_rate)
            await watcher.wait_for(set(created), within=120)
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
                "p50_ms": round(_pct(gaps, 50) * 1000, 1),
                "p95_ms": round(_pct(gaps, 95) * 1000, 1),
                "p99_ms": round(_pct(gaps, 99) * 1000, 1),
                "max_ms": round(max(gaps, default=float("nan")) * 1000, 1),
            }
        )
    return rows


# -- B4 ------------------------------------------------------------------------------------


async def b4_ingestion(
    bench: Bench, ceiling: float | None, *, heartbeats_only: bool = False
) -> Row:
    """The highest report rate the sidecar sustains with p99 <= 100 ms. The mix is half
    `idle` (answered once durable: one API write each at these rates) and half `active`;
    `heartbeats_only` sends only `active` (answered once queued, written in batches), the
    sidecar's own ceiling rather than the API server's."""
    ns = bench.namespace("b4-hb" if heartbeats_only else "b4")
    tag = "b4hb" if heartbeats_only else "b4"
    agents = [f"load-{i:04d}" for i in range(bench.sizes.b4_agents)]
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    with bench.stack(ns, 1) as stack:
        key = stack.options.api_key
        # The load generator shares this process (and the machine's 2 cores) with the
        # bench: through httpcore's pool it cost ~9 ms of CPU per report at 80/s and was
        # the first thing to saturate. aiohttp's pool keeps it at a fraction of that;
        # latency is still taken around the whole call, from send to response.
        async with httpx.AsyncClient(
            base_url=stack.sidecar_url,
            headers={"Authorization": f"Bearer {key}"},
            transport=AiohttpTransport(max_connections=256),
            timeout=10,
            trust_env=False,
        ) as client:

            async def send(agent: str, state: str) -> tuple[float, int]:
                body = {
                    "agentId": agent,
                    "timestamp": datetime.now(UTC).isoformat(),
                    "state": state,
                    "details": {},
                }
                started = time.perf_counter()
                try:
                    resp = await client.post(f"/v1/opscore/agent/{agent}/state", json=body)
                    code = resp.status_code
                except httpx.HTTPError:
                    code = 0
                return time.perf_counter() - started, code

            await asyncio.gather(*(send(a, "idle") for a in agents))  # first contact
            # First contact creates the Agents and the operator labels and derives them:
            # measure ingestion once those writes are done, not the creation burst.
            await _writes_quiet(bench.kube, quiet=2.0, within=120)
            for rate in bench.sizes.b4_rates:
                count = int(rate * bench.sizes.b4_seconds)
                start = time.monotonic()

                async def scheduled(
                    i: int, start: float = start, rate: float = rate
                ) -> tuple[float, int]:
                    delay = start + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    state = "idle" if i % 2 and not heartbeats_only else "active"
                    return await send(agents[i % len(agents)], state)

                results = await asyncio.gather(*(scheduled(i) for i in range(count)))
                elapsed = time.monotonic() - start
                lat = [r[0] for r in results if r[1] == 202]
                errors = sum(1 for r in results if r[1] != 202)
                step = {
                    "offered_per_s": rate,
                    "accepted_per_s": round(len(lat) / elapsed, 1),
                    "p50_ms": round(_pct(lat, 50) * 1000, 1),
                    "p99_ms": round(_pct(lat, 99) * 1000, 1),
                    "errors": errors,
                }
                steps.append(step)
                bench.series[f"{tag}_{int(rate)}_ms"] = [x * 1000 for x in lat]
                if step["p99_ms"] > 100 or errors:
                    break
                best = step
    bench.series[f"{tag}_steps"] = steps
    rate = best["accepted_per_s"] if best else 0.0
    return {
        "scenario": "B4 ingestion, heartbeats only" if heartbeats_only else "B4 ingestion",
        "max_reports_per_s_at_p99_le_100ms": rate,
        "p99_ms_at_max": best["p99_ms"] if best else None,
        "vs_b0_ceiling": round(rate / ceiling, 2) if ceiling and rate else None,
        "agents": len(agents),
        "steps": steps,
    }


async def _writes_quiet(kube: BenchKube, *, quiet: float, within: float) -> None:
    """Wait until the API server has served no write for `quiet` seconds."""
    deadline = time.monotonic() + within
    last = (await write_counts(kube)).total
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now_total = (await write_counts(kube)).total
        if now_total != last:
            last, still_since = now_total, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return


def summary_stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values)} if values else {}


# -- B5 ------------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _operator_gauges(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = (await client.get(url)).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(("opscore_cached_objects", "opscore_workqueue_depth")):
                label = sample.labels.get("kind") or sample.labels.get("queue") or ""
                out[f"{sample.name}:{label}"] = sample.value
            elif sample.name == "opscore_workflow_reconciles_total":
                out[f"reconciles:{sample.labels.get('result')}"] = sample.value
            elif sample.name == "opscore_agent_reconciles_total":
                out[f"agent_reconciles:{sample.labels.get('result')}"] = sample.value
            elif sample.name == "opscore_events_total":
                out[f"events:{sample.labels.get('result')}"] = sample.value
    return out


async def b5_scale(bench: Bench) -> Row:
    """N Agents and N Workflows present: operator memory, and the time a fresh operator
    takes to observe them all and settle (no 429 storm: the client-side limit holds)."""
    from opscore_kube import AGENTS

    n = bench.sizes.b5_objects
    ns = bench.namespace("b5")
    stack = bench.stack(ns, 0)
    stack.start_sidecar()
    stack.start_sim()
    gate = asyncio.Semaphore(32)

    async def make_agent(i: int) -> None:
        body = {
            "apiVersion": AGENTS.api_version,
            "kind": "Agent",
            "metadata": {"name": f"scale-{i:05d}"},
            "spec": {"capabilities": ["scale"], "agentName": f"scale-{i:05d}"},
        }
        async with gate:
            await bench.kube.create(AGENTS, ns, body)

    url = f"http://127.0.0.1:{stack.operator_metrics_port}/metrics"
    rows: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            operator = stack.start_operator()
            await _settle(client, url, 0, within=60)
            rows["empty_operator_rss_mib"] = round(_rss_mib(operator.pid), 1)
            # Live: the running operator takes N agents and N workflows as they arrive.
            before = await write_counts(bench.kube)
            started = time.monotonic()
            await asyncio.gather(*(make_agent(i) for i in range(n)))
            await create_all(bench.kube, ns, (one_step(f"wf-{i:05d}", "scale") for i in range(n)))
            rows["create_s"] = round(time.monotonic() - started, 1)
            settled = await _settle(client, url, n, within=900)
            rows["live_settle_s"] = round(settled - started, 1)
            live = await write_counts(bench.kube) - before
            rows["live_operator_api_writes"] = live.total - 2 * n
            rows["live_writes_by_resource"] = dict(live.by_resource)
            # Cold start: a fresh operator observes everything already there.
            before = await write_counts(bench.kube)
            started = time.monotonic()
            operator = stack.start_operator() if stack.operator is None else _restart(stack)
            settled = await _settle(client, url, n, within=600)
            rows["cold_start_settle_s"] = round(settled - started, 1)
            cold = await write_counts(bench.kube) - before
            rows["cold_start_api_writes"] = cold.total
            rows["cold_writes_by_resource"] = dict(cold.by_resource)
            rows["operator_rss_mib"] = round(_rss_mib(operator.pid), 1)
        assert stack.sidecar is not None
        rows["sidecar_rss_mib"] = round(_rss_mib(stack.sidecar.pid), 1)
        throttled = await _throttled(bench.kube)
    finally:
        stack.stop()
    growth = rows["operator_rss_mib"] - rows["empty_operator_rss_mib"]
    return {
        "scenario": f"B5 scale {n} agents + {n} workflows",
        "objects": 2 * n,
        **rows,
        "operator_mib_per_1000_objects": round(growth / (2 * n / 1000), 2),
        "apiserver_429_total": throttled,
    }


def _restart(stack: OpsCoreStack) -> Any:
    stack.restart_operator()
    return stack.operator


async def _settle(client: httpx.AsyncClient, url: str, n: int, within: float) -> float:
    """When the operator holds every object, its queues (workflows and agents) are empty
    and it stopped working (reconciling, posting Events)."""
    deadline = time.monotonic() + within
    last: float | None = None
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        try:
            g = await _operator_gauges(client, url)
        except httpx.HTTPError:
            await asyncio.sleep(0.2)
            continue
        seen = (
            g.get("opscore_cached_objects:workflow", 0) >= n
            and g.get("opscore_cached_objects:agent", 0) >= n
        )
        # Both queues: agent status writes still queued would land in the next phase.
        idle = (
            g.get("opscore_workqueue_depth:workflows", 1) == 0
            and g.get("opscore_workqueue_depth:agents", 1) == 0
        )
        work = sum(
            g.get(f"{kind}:{result}", 0)
            for kind, results in (
                ("reconciles", ("ok", "error")),
                ("agent_reconciles", ("ok", "error")),
                ("events", ("posted", "failed", "dropped")),  # Events trail the work
            )
            for result in results
        )
        now = time.monotonic()
        if seen and idle and work == last:
            quiet_since = quiet_since or now
            if now - quiet_since >= 1.0:
                return quiet_since
        else:
            quiet_since = None
        last = work
        await asyncio.sleep(0.2)
    raise TimeoutError(f"operator did not settle within {within}s")


async def _throttled(kube: BenchKube) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0
    for family in text_string_to_metric_families(await kube.raw_get("/metrics")):
        if family.name in ("apiserver_request", "apiserver_request_total"):
            total += sum(
                int(s.value)
                for s in family.samples
                if s.name.endswith("_total") and s.labels.get("code") == "429"
            )
    return total


# -- S: the walking skeleton's own figures (issue 3) --------------------------------------


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
        "apply_to_succeeded_p50_ms": round(_pct(totals, 50) * 1000, 1),
        "apply_to_succeeded_max_ms": round(max(totals) * 1000, 1),
        "step_advance_p50_ms": round(_pct(gaps, 50) * 1000, 1),
        "step_advance_p95_ms": round(_pct(gaps, 95) * 1000, 1),
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
