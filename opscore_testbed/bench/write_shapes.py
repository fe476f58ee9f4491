"""What kube-apiserver spends per durable report, by how reports are stored:
`make bench-write-shapes`.

B4's durable reports stop near 100/s because each `idle`/`error` is one Agent status PATCH
before its answer (docs/performance.md). The way past that is structural (fewer writes per
report), and this measures the candidates before anyone builds one. Each shape is driven at
the same *report* rate (default 250/s, issue 20's target) on a fresh control plane, with
nothing of Ops-Core running: the writes are sent as the sidecar's ServiceAccount (so the
token check and RBAC are paid as in a cluster), with one watch open on what is written (as
the operator's informer would be), and one write in flight per object (as the sidecar
does). kube-apiserver's and etcd's CPU over the window come from /proc, the writes from
kube-apiserver's own `apiserver_request_total`.

Shapes:

- `agent-status json patch, 4`: today's write (reports.py): test `reportSequence`, replace
  `status.reports` (4 entries, `report_limit(1)`), bump the sequence, on an Agent whose
  status also holds what the operator derives (a second field manager).
- `agent-status merge patch, 4`: the same content as a merge patch (no field test).
- `agent-status json patch, 1`: today's write with the list cut to one entry.
- `configmap per agent, 4`: a built-in object per agent (no CRD schema, no pruning).
- `report-log CR per agent, 4`: a small custom object per agent holding only its reports
  (`report_log_crd.yaml`, the Agent's report schema), written as today's JSON patch tests
  and bumps its sequence: whether a lean custom resource costs what a ConfigMap does, or
  what an Agent does (is it the Agent's size, or custom resources' path?).
- `shared configmap, N per write`: one object holding every agent's newest two reports;
  each write carries N agents' reports (what a per-replica inbox that batches the reports
  arriving during one write would do at this rate). Its latency column is the write's
  alone: a batcher adds up to one write interval of waiting on top.

Exits 1 when a write failed, or when kube-apiserver counted a different number of writes
than the client completed (then the per-write figures would be wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opscore_kube import AGENTS, KubeApiError, KubeClient, load_connection
from opscore_kube.resources import Resource
from opscore_logic.agent_model import AgentReport
from opscore_testbed.bench.__main__ import RESULTS, fresh_bench
from opscore_testbed.bench.apimetrics import write_counts
from opscore_testbed.bench.audit import OPERATOR_ACCOUNT, SIDECAR_ACCOUNT
from opscore_testbed.bench.common import ACCOUNTS, ROLES, SIZES, Bench, Row, pct
from opscore_testbed.bench.cpu import CpuMeter, busy_cores, cpu_seconds, machine_busy
from opscore_testbed.bench.drain import control_plane_pids
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.spread import fold

CONFIGMAPS = Resource("", "v1", "configmaps")
REPORT_LOGS = Resource("bench.opscore.opspawn.io", "v1alpha1", "agentreportlogs")
REPORT_LOG_CRD = Path(__file__).with_name("report_log_crd.yaml")
#: Served writes may differ from the client's count by this share before the run fails.
COUNT_TOLERANCE = 0.01
#: kube-apiserver counts as idle below this many cores (over one second) ...
SETTLED_CORES = 0.05
#: ... waited for at most this long before the window opens anyway.
SETTLE_WITHIN = 60.0


@dataclass
class Target:
    """The objects a shape writes, and what the bench keeps of them between writes."""

    kube: KubeClient  # as the sidecar
    namespace: str
    agents: list[str]
    kept: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # newest reports
    sequence: dict[str, int] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, name: str) -> asyncio.Lock:
        return self.locks.setdefault(name, asyncio.Lock())

    def add_report(self, agent: str, keep: int) -> list[dict[str, Any]]:
        """A new `idle` report for `agent`, appended to the ones kept; the newest `keep`."""
        now = datetime.now(UTC)
        report = AgentReport(state="idle", timestamp=now, received_at=now).wire()
        kept = [*self.kept.get(agent, []), report][-keep:]
        self.kept[agent] = kept
        return kept


Write = Callable[[Target, list[str]], Awaitable[None]]


@dataclass(frozen=True)
class Shape:
    name: str
    per_write: int  # reports one write carries
    counted_as: str  # the resource in apiserver_request_total
    watch: Resource
    write: Write
    shared: bool = False  # one object for all agents (else one per agent)


def _agent_json_patch(keep: int) -> Write:
    async def write(target: Target, agents: list[str]) -> None:
        (agent,) = agents
        async with target.lock(agent):
            reports = target.add_report(agent, keep)
            seq = target.sequence.get(agent, 0)
            await target.kube.json_patch(
                AGENTS,
                target.namespace,
                agent,
                [
                    {"op": "test", "path": "/status/reportSequence", "value": seq},
                    {"op": "replace", "path": "/status/reports", "value": reports},
                    {"op": "replace", "path": "/status/reportSequence", "value": seq + 1},
                ],
                status=True,
            )
            target.sequence[agent] = seq + 1

    return write


async def _agent_merge_patch(target: Target, agents: list[str]) -> None:
    (agent,) = agents
    async with target.lock(agent):
        reports = target.add_report(agent, 4)
        seq = target.sequence.get(agent, 0) + 1
        patch = {"status": {"reports": reports, "reportSequence": seq}}
        await target.kube.patch(AGENTS, target.namespace, agent, patch, status=True)
        target.sequence[agent] = seq


async def _configmap_per_agent(target: Target, agents: list[str]) -> None:
    (agent,) = agents
    async with target.lock(agent):
        reports = target.add_report(agent, 4)
        patch = {"data": {"reports": json.dumps(reports)}}
        await target.kube.patch(CONFIGMAPS, target.namespace, f"reports-{agent}", patch)


async def _report_log_per_agent(target: Target, agents: list[str]) -> None:
    (agent,) = agents
    async with target.lock(agent):
        reports = target.add_report(agent, 4)
        seq = target.sequence.get(agent, 0)
        await target.kube.json_patch(
            REPORT_LOGS,
            target.namespace,
            f"reports-{agent}",
            [
                {"op": "test", "path": "/sequence", "value": seq},
                {"op": "replace", "path": "/reports", "value": reports},
                {"op": "replace", "path": "/sequence", "value": seq + 1},
            ],
        )
        target.sequence[agent] = seq + 1


SHARED = "reports-shard-0"


async def _shared_configmap(target: Target, agents: list[str]) -> None:
    async with target.lock(SHARED):
        data = {agent: json.dumps(target.add_report(agent, 2)) for agent in agents}
        await target.kube.patch(CONFIGMAPS, target.namespace, SHARED, {"data": data})


SHAPES = (
    Shape("agent-status json patch, 4", 1, "agents/status", AGENTS, _agent_json_patch(4)),
    Shape("agent-status merge patch, 4", 1, "agents/status", AGENTS, _agent_merge_patch),
    Shape("agent-status json patch, 1", 1, "agents/status", AGENTS, _agent_json_patch(1)),
    Shape("configmap per agent, 4", 1, "configmaps", CONFIGMAPS, _configmap_per_agent),
    Shape("report-log CR per agent, 4", 1, "agentreportlogs", REPORT_LOGS, _report_log_per_agent),
    Shape("shared configmap, 5 per write", 5, "configmaps", CONFIGMAPS, _shared_configmap, True),
    Shape("shared configmap, 25 per write", 25, "configmaps", CONFIGMAPS, _shared_configmap, True),
)


def _derived_status(now: str) -> dict[str, Any]:
    """What the operator keeps in an idle agent's status (beside the sidecar's reports)."""
    return {
        "state": "Idle",
        "rawState": "idle",
        "stateSince": now,
        "lastSeen": now,
        "activeTasks": 0,
        "tasksSucceeded": 12,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reporting",
                "message": "The agent reports and is idle.",
                "lastTransitionTime": now,
            }
        ],
        "observedGeneration": 1,
    }


async def _create(
    shape: Shape,
    bench: Bench,
    namespace: str,
    agents: list[str],
    *,
    operator: KubeClient,
    sidecar: KubeClient,
) -> None:
    """The objects `shape` writes, in the state B4's Agents are in once derived."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    if shape.counted_as == "agents/status":
        for agent in agents:
            body = {
                "apiVersion": AGENTS.api_version,
                "kind": "Agent",
                "metadata": {"name": agent},
                "spec": {"capabilities": ["load"], "agentName": agent, "agentId": agent},
            }
            await bench.kube.create(AGENTS, namespace, body)
            await operator.patch(
                AGENTS, namespace, agent, {"status": _derived_status(now)}, status=True
            )
            # The sidecar's fields, as its first write leaves them (the sequence is tested).
            first = {"status": {"reports": [], "reportSequence": 0}}
            await sidecar.patch(AGENTS, namespace, agent, first, status=True)
        return
    names = [SHARED] if shape.shared else [f"reports-{agent}" for agent in agents]
    if shape.watch is REPORT_LOGS:
        for name in names:
            kind = {"apiVersion": REPORT_LOGS.api_version, "kind": "AgentReportLog"}
            empty = {"metadata": {"name": name}, "sequence": 0, "reports": []}
            await sidecar.create(REPORT_LOGS, namespace, {**kind, **empty})
        return
    for name in names:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}
        await bench.kube.create(CONFIGMAPS, namespace, body)


@dataclass(frozen=True)
class Result:
    shape: Shape
    window: float
    writes_ok: int
    errors: list[str]
    served: int  # writes kube-apiserver counted on the shape's resource
    latencies: list[float]  # seconds per write, from its turn to its answer
    cpu: dict[str, float]  # CPU seconds per process over the window
    machine_cores: float
    idle_cores: float  # kube-apiserver's before the window, once settled

    @property
    def problems(self) -> list[str]:
        problems = (
            [f"{len(self.errors)} writes failed, e.g. {self.errors[0]}"] if self.errors else []
        )
        if abs(self.served - self.writes_ok) > COUNT_TOLERANCE * max(1, self.writes_ok):
            problems.append(
                f"kube-apiserver counted {self.served} writes, the client {self.writes_ok}"
            )
        if not self.writes_ok:
            problems.append("no write succeeded")
        return problems


async def _drive(
    shape: Shape, target: Target, rate: float, seconds: float
) -> tuple[int, list[str], list[float]]:
    """Writes of `shape` at `rate` reports/s for `seconds`, agents in turn; returns the
    writes that succeeded, the errors, and each successful write's latency."""
    interval = shape.per_write / rate
    latencies: list[float] = []
    errors: list[str] = []
    tasks: set[asyncio.Task[None]] = set()
    turn = 0

    async def one(agents: list[str]) -> None:
        started = time.perf_counter()
        try:
            await shape.write(target, agents)
        except KubeApiError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        latencies.append(time.perf_counter() - started)

    start = time.monotonic()
    k = 0
    while (due := start + k * interval) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        agents = [target.agents[(turn + j) % len(target.agents)] for j in range(shape.per_write)]
        turn += shape.per_write
        task = asyncio.create_task(one(agents))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)
    return len(latencies), errors, latencies


async def _watch(kube: BenchKube, path: str) -> None:
    """Hold a watch on `path` open and read what it sends (without parsing it), until
    cancelled."""
    async with kube.watch_lines(path) as lines:
        async for _ in lines:
            pass


async def _settle(pid: int) -> float:
    """Wait until kube-apiserver idles (a fresh one publishes the CRDs' OpenAPI and runs
    its start-up controllers for a while), at most SETTLE_WITHIN seconds; its cores over
    the last second waited."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        cores = cpu_seconds(pid) - before
        if cores <= SETTLED_CORES or time.monotonic() > deadline:
            return round(cores, 3)


async def measure(shape: Shape, rate: float, seconds: float, agents: int, log_dir: Path) -> Result:
    async with fresh_bench(SIZES["full"], log_dir, {}, profile=False) as bench:
        namespace = bench.namespace("writes")
        bench.cp.kubectl("apply", "-n", namespace, "-f", str(ACCOUNTS), "-f", str(ROLES))
        bench.cp.kubectl("apply", "-f", str(REPORT_LOG_CRD))
        bench.cp.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPORT_LOG_CRD),
            timeout=90,
        )  # fmt: skip
        # The sidecar's Role covers neither ConfigMaps nor the candidate report log.
        bench.cp.kubectl(
            "create", "role", "bench-configmaps", "-n", namespace,
            "--verb=create,get,patch,list,watch",
            "--resource=configmaps,agentreportlogs.bench.opscore.opspawn.io",
        )  # fmt: skip
        bench.cp.kubectl(
            "create", "rolebinding", "bench-configmaps", "-n", namespace,
            "--role=bench-configmaps", f"--serviceaccount={namespace}:{SIDECAR_ACCOUNT}",
        )  # fmt: skip
        names = [f"load-{i:04d}" for i in range(agents)]
        sidecar = _client(bench, namespace, SIDECAR_ACCOUNT, "opscore-sidecar")
        operator = _client(bench, namespace, OPERATOR_ACCOUNT, "opscore-operator")
        try:
            await _create(shape, bench, namespace, names, operator=operator, sidecar=sidecar)
            target = Target(sidecar, namespace, names)
            watch = asyncio.create_task(
                _watch(bench.kube, shape.watch.path(namespace) + "?watch=1")
            )
            pids = control_plane_pids(bench)
            meter = CpuMeter({**pids, "bench": os.getpid()})
            idle = await _settle(pids["kube_apiserver"])
            before = await write_counts(bench.kube)
            meter.start()
            machine_before = machine_busy()
            started = time.monotonic()
            ok, errors, latencies = await _drive(shape, target, rate, seconds)
            window = time.monotonic() - started
            cpu = meter.stop()
            machine_cores = busy_cores(machine_before, machine_busy(), os.cpu_count() or 1)
            served = (await write_counts(bench.kube) - before).by_resource[shape.counted_as]
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        finally:
            await sidecar.aclose()
            await operator.aclose()
    return Result(shape, window, ok, errors, served, latencies, cpu, machine_cores, idle)


def _client(bench: Bench, namespace: str, account: str, user_agent: str) -> KubeClient:
    kubeconfig = bench.cp.service_account_kubeconfig(namespace, account)
    return KubeClient(
        load_connection(str(kubeconfig)),
        qps=1e6,
        burst=1_000_000,
        max_retries=0,
        user_agent=user_agent,
    )


def figures(result: Result) -> Row:
    """One run of a shape as a row `spread.fold` can fold with the shape's other runs."""
    apiserver = result.cpu.get("kube_apiserver", 0.0)
    per_write = apiserver * 1000 / max(1, result.served)
    return {
        "scenario": result.shape.name,
        "problems": result.problems,
        "reports_per_write": result.shape.per_write,
        "writes_per_s": round(result.served / result.window, 1),
        "apiserver_ms_per_report": round(per_write / result.shape.per_write, 3),
        "apiserver_ms_per_write": round(per_write, 3),
        "apiserver_cores": round(apiserver / result.window, 3),
        "etcd_cores": round(result.cpu.get("etcd", 0.0) / result.window, 3),
        "bench_cores": round(result.cpu.get("bench", 0.0) / result.window, 3),
        "machine_cores": result.machine_cores,
        "apiserver_idle_cores": result.idle_cores,
        "write_p50_ms": round(pct(result.latencies, 50) * 1000, 1),
        "write_p99_ms": round(pct(result.latencies, 99) * 1000, 1),
    }


HEADER = (
    "| how a report is stored | reports per write | writes/s "
    "| kube-apiserver ms per report | kube-apiserver ms per write | kube-apiserver cores "
    "| etcd cores | machine cores | write p99 ms |"
)


def _spread(row: Row, key: str, digits: int) -> str:
    value = f"{row[key]:.{digits}f}"
    low_high = (row.get("spread") or {}).get(key)
    if not low_high or low_high[0] == low_high[1]:
        return value
    return f"{value} [{low_high[0]:.{digits}f}-{low_high[1]:.{digits}f}]"


def line(row: Row) -> str:
    return (
        f"| {row['scenario']} | {row['reports_per_write']:g} | {row['writes_per_s']:.0f} "
        f"| {_spread(row, 'apiserver_ms_per_report', 2)} "
        f"| {_spread(row, 'apiserver_ms_per_write', 2)} "
        f"| {row['apiserver_cores']:.2f} | {row['etcd_cores']:.2f} "
        f"| {row['machine_cores']:.2f} | {_spread(row, 'write_p99_ms', 1)} |"
    )


def table(rows: list[Row], *, rate: float, seconds: float, agents: int, repeats: int) -> list[str]:
    return [
        "# What kube-apiserver spends per durable report, by how reports are stored",
        "",
        f"`make bench-write-shapes`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores: {rate:g} `idle` reports/s for {seconds:g} s on {agents} "
        f"agents, {repeats} rounds over the shapes, each run on a fresh control plane once "
        "kube-apiserver idles; written as the sidecar's ServiceAccount, one watch open on "
        "what is written, nothing of Ops-Core running. Medians of the rounds [min-max]. "
        "kube-apiserver's CPU per write is all of its CPU in the window over the writes it "
        "counted; machine cores include the load generator (this process).",
        "",
        HEADER,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(line(row) for row in rows),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=250.0, help="reports per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the shapes")
    parser.add_argument("--shapes", default="", help="comma-separated shape numbers (1-based)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest-write-shapes.md")
    args = parser.parse_args(argv)
    chosen = [SHAPES[int(n) - 1] for n in args.shapes.split(",")] if args.shapes else list(SHAPES)
    log_dir = Path(tempfile.mkdtemp(prefix="opscore-write-shapes-"))
    runs: dict[str, list[Row]] = {shape.name: [] for shape in chosen}
    # Rounds over the shapes, not one shape's runs in a row: the host's speed drifts
    # within minutes here (docs/performance.md), and must not land on one shape only.
    for round_ in range(args.repeats):
        for shape in chosen:
            print(f"  round {round_ + 1}/{args.repeats}: {shape.name}", flush=True)
            result = asyncio.run(measure(shape, args.rate, args.seconds, args.agents, log_dir))
            runs[shape.name].append(figures(result))
            print(f"    {figures(result)}", flush=True)
    rows = [fold(shape_runs) for shape_runs in runs.values()]
    lines = table(
        rows, rate=args.rate, seconds=args.seconds, agents=args.agents, repeats=args.repeats
    )
    problems = [f"{row['scenario']}: {p}" for row in rows for p in row["problems"]]
    lines += [f"Problems: {p}" for p in problems]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
