"""B5: N Agents and N Workflows present: operator memory and settle time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from opscore_testbed.bench.common import Bench, Row
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.workload import create_all, one_step
from opscore_testbed.stack import OpsCoreStack


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
            mark = bench.audit.mark()
            started = time.monotonic()
            await asyncio.gather(*(make_agent(i) for i in range(n)))
            await create_all(bench.kube, ns, (one_step(f"wf-{i:05d}", "scale") for i in range(n)))
            rows["create_s"] = round(time.monotonic() - started, 1)
            settled = await _settle(client, url, n, within=900)
            rows["live_settle_s"] = round(settled - started, 1)
            live = bench.audit.writes_since(mark)
            rows["live_operator_api_writes"] = live.writer_total("operator")
            rows["live_sidecar_api_writes"] = live.writer_total("sidecar")
            rows["live_bench_creates"] = live.writer_total("bench")
            rows["live_writes_by_writer"] = live.table()
            # Cold start: a fresh operator observes everything already there.
            mark = bench.audit.mark()
            started = time.monotonic()
            operator = stack.start_operator() if stack.operator is None else _restart(stack)
            settled = await _settle(client, url, n, within=600)
            rows["cold_start_settle_s"] = round(settled - started, 1)
            cold = bench.audit.writes_since(mark)
            rows["cold_start_api_writes"] = cold.opscore_total
            rows["cold_start_control_plane_writes"] = cold.writer_total("control-plane")
            rows["cold_writes_by_writer"] = cold.table()
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
