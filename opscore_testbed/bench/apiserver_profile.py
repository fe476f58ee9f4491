"""Where kube-apiserver's CPU goes at B4's edge: `make bench-apiserver-profile`.

B4 stops where the p99 of durable reports passes 100 ms, while B0 says the API server
serves more PATCHes than B4 sends. This runs B4's load at one fixed rate (default 100
reports/s, half `idle`, on 100 agents) on a fresh control plane, takes kube-apiserver's
own CPU profile over the window (`/debug/pprof/profile`, on by default in kube-apiserver),
reads every process's CPU from /proc, and writes a table: cores used per process, the
API server's CPU per Agent status PATCH, and the stages of its request path by share
(`go tool pprof -top -cum`). Exits 1 when the load had errors or the profile is empty.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from opscore_testbed.bench.__main__ import RESULTS, fresh_bench
from opscore_testbed.bench.apimetrics import (
    Buckets,
    apiserver_latency,
    histogram_delta,
    parse_histogram,
    share_over,
    write_counts,
)
from opscore_testbed.bench.common import SIZES, pct, writes_quiet
from opscore_testbed.bench.cpu import CpuMeter, busy_cores, machine_busy
from opscore_testbed.bench.drain import stack_pids
from opscore_testbed.bench.holding import Sent
from opscore_testbed.bench.ingestion import report_client, send_at_rate, send_report
from opscore_testbed.bench.kube import BenchKube

#: Request-path stages worth a line in the table (pprof node names, matched by prefix).
STAGES = {
    "k8s.io/apiserver/pkg/endpoints/handlers.(*patcher).patchResource": "PATCH handler, all",
    "k8s.io/apiserver/pkg/storage/etcd3.(*store).GuaranteedUpdate": "read-modify-write to etcd",
    "k8s.io/apiserver/pkg/endpoints/handlers.(*jsonPatcher).applyPatchToCurrentObject": (
        "apply the JSON patch"
    ),
    "k8s.io/apimachinery/pkg/util/managedfields/internal.(*FieldManager).Update": (
        "managedFields bookkeeping"
    ),
    "k8s.io/apiextensions-apiserver/pkg/registry/customresource.statusStrategy.ValidateUpdate": (
        "CRD schema validation"
    ),
    "k8s.io/apiextensions-apiserver/pkg/apiserver.schemaCoercingDecoder.Decode": (
        "decode and prune the object"
    ),
    "k8s.io/apiserver/pkg/storage/etcd3.(*watchChan).serialProcessEvents": "watch fan-out",
    "k8s.io/apiserver/pkg/endpoints/filters.withAuthentication": "authentication",
    "k8s.io/apiserver/pkg/endpoints/filters.withAuthorization": "authorization",
    "k8s.io/apiserver/pkg/server.DefaultBuildHandlerChain.WithAudit": "audit log",
    "runtime.gcBgMarkWorker": "Go garbage collector",
}


def _stages(pprof: Path) -> list[tuple[str, float]]:
    """(stage, % of the API server's samples) from `go tool pprof -top -cum`."""
    text = subprocess.run(
        ["go", "tool", "pprof", "-top", "-cum", "-nodecount=400", str(pprof)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[4].endswith("%"):
            continue
        node = " ".join(parts[5:])
        for prefix, label in STAGES.items():
            if node.startswith(prefix) and label not in found:
                found[label] = float(parts[4].rstrip("%"))
    return sorted(found.items(), key=lambda item: -item[1])


@dataclass(frozen=True)
class Measured:
    """What one profiled window gave."""

    results: list[Sent]
    cpu: dict[str, float]  # CPU seconds per process over the window (the load generator too)
    window: float
    machine_cores: float  # the machine's busy cores over the window, whoever used them
    patches: int  # Agent status PATCHes the API server served in it
    agents: int
    pprof: bytes
    # One Agent status PATCH's latency in the window, as each side timed it.
    server_latency: Buckets = field(default_factory=dict)  # kube-apiserver's own
    client_latency: Buckets = field(default_factory=dict)  # the sidecar's, around the call


async def measure(rate: float, seconds: float, log_dir: Path) -> Measured:
    sizes = SIZES["full"]
    async with fresh_bench(sizes, log_dir, {}, profile=False) as bench:
        ns = bench.namespace("b4-profile")
        agents = [f"load-{i:04d}" for i in range(sizes.b4_agents)]
        with bench.stack(ns, 1) as stack:
            async with report_client(stack) as client:
                await asyncio.gather(*(send_report(client, a, "idle") for a in agents))
                await writes_quiet(bench.kube, quiet=2.0, within=120)
                # This process generates the load, on the same cores: it is measured too.
                meter = CpuMeter({**stack_pids(bench, stack), "bench": os.getpid()})
                before = await write_counts(bench.kube)
                latency_before = await _patch_latencies(bench.kube, client)
                meter.start()
                machine_before = machine_busy()
                started = time.monotonic()
                span = max(1, int(seconds) - 1)
                taken = asyncio.create_task(
                    bench.kube.raw_bytes(f"/debug/pprof/profile?seconds={span}", within=span + 30)
                )
                results = await send_at_rate(client, agents, rate, seconds, heartbeats_only=False)
                raw = await taken
                window = time.monotonic() - started
                cpu = meter.stop()
                machine_cores = busy_cores(machine_before, machine_busy(), os.cpu_count() or 1)
                patches = (await write_counts(bench.kube) - before).by_resource["agents/status"]
                latency_after = await _patch_latencies(bench.kube, client)
    server, client_side = (
        histogram_delta(after, before)
        for after, before in zip(latency_after, latency_before, strict=True)
    )
    return Measured(
        results, cpu, window, machine_cores, patches, len(agents), raw, server, client_side
    )


async def _patch_latencies(
    kube: BenchKube, sidecar: aiohttp.ClientSession
) -> tuple[Buckets, Buckets]:
    """The latency histograms of Agent status PATCHes so far: kube-apiserver's own
    (`apiserver_request_duration_seconds`) and the sidecar's client-side one."""
    server = await apiserver_latency(kube, verb="PATCH", resource="agents/status")
    async with sidecar.get("/metrics") as answer:
        metrics = await answer.text()
    client = parse_histogram(
        metrics,
        "opscore_kube_api_request_seconds",
        {"verb": "patch_status"},
    )
    return server, client


def table(m: Measured, rate: float, seconds: float, pprof: Path) -> list[str]:
    idle = [lat for lat, code, state in m.results if code == 202 and state == "idle"]
    errors = sum(1 for _, code, _ in m.results if code != 202)
    apiserver_ms = m.cpu.get("kube_apiserver", 0.0) * 1000 / max(1, m.patches)
    return [
        "# Where kube-apiserver's CPU goes at B4's edge",
        "",
        f"`make bench-apiserver-profile`: {rate:g} reports/s for {seconds:g} s (half `idle`, "
        f"on {m.agents} agents), fresh control plane. Durable (`idle`) p50 "
        f"{pct(idle, 50) * 1000:.1f} ms, p99 {pct(idle, 99) * 1000:.1f} ms; {errors} errors; "
        f"{m.patches} Agent status PATCHes; kube-apiserver {apiserver_ms:.1f} ms of CPU per "
        "PATCH (all its CPU in the window over the PATCHes).",
        "",
        "| process | cores used |",
        "| --- | ---: |",
        *(f"| {name} | {used / m.window:.2f} |" for name, used in sorted(m.cpu.items())),
        f"| the whole machine (of {os.cpu_count()}) | {m.machine_cores:.2f} |",
        "",
        "| one Agent status PATCH, timed by | PATCHes | > 25 ms | > 50 ms | > 100 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        _latency_row("kube-apiserver itself", m.server_latency),
        _latency_row("the sidecar, around the call", m.client_latency),
        "",
        "| kube-apiserver stage (cumulative) | share of its CPU |",
        "| --- | ---: |",
        *(f"| {label} | {share:.0f} % |" for label, share in _stages(pprof)),
        "",
    ]


def _latency_row(who: str, buckets: Buckets) -> str:
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return f"| {who} | 0 | - | - | - |"
    shares = " | ".join(f"{share_over(buckets, b) * 100:.1f} %" for b in (0.025, 0.05, 0.1))
    return f"| {who} | {total:.0f} | {shares} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "latest-apiserver-profile.md")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="opscore-apiserver-profile-"))
    measured = asyncio.run(measure(args.rate, args.seconds, log_dir))
    if not measured.pprof:
        print("kube-apiserver gave no profile", file=sys.stderr)
        return 1
    pprof = args.out.with_suffix(".pprof")
    pprof.write_bytes(measured.pprof)
    lines = table(measured, args.rate, args.seconds, pprof)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out} (raw profile: {pprof}, not committed)")
    return 1 if any(code != 202 for _, code, _ in measured.results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
