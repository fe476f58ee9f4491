"""`python -m opscore_testbed.bench [--size smoke|full] [--scenarios B0,B1,...]`.

Starts a local control plane for each run of each scenario, runs the scenario against the
real processes (sidecar, operator, AgentKit simulator with instant agents), prints a table,
and writes bench/results/latest.json and bench/results/latest.png. Exits 1 when any
scenario's workflows did not all finish within its wait or did not all succeed (the figures
would be of a broken run); a scenario that cannot finish at all (B5 never settling) raises,
which exits non-zero too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from opscore_testbed.bench import report
from opscore_testbed.bench.ceiling import b0_ceiling
from opscore_testbed.bench.common import SIZES, Bench, Row, Sizes
from opscore_testbed.bench.cpu import machine_ticks, steal_percent
from opscore_testbed.bench.drain import b1_drain, b2_rate
from opscore_testbed.bench.ingestion import b4_ingestion
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.latency import b3_latency, s_sequential
from opscore_testbed.bench.scale import b5_scale
from opscore_testbed.bench.spread import fold
from opscore_testbed.bench.traced import b1_traced
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.jaeger import Jaeger
from opscore_testbed.stack import REPO, install_crds

RESULTS = REPO / "bench" / "results"
ALL = ("S", "B0", "B1", "B2", "B3", "B4", "B5")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


#: Scenarios `make bench` repeats `Sizes.repeats` times (S and B5 run once: B5 alone takes
#: minutes at full size, and S is the idle-system reference, not a load figure).
REPEATED = {"B0", "B1", "B2", "B3", "B4"}

#: One run of a scenario, on the Bench it is given.
Scenario = Callable[[Bench], Awaitable[list[Row]]]


async def run(
    sizes: Sizes,
    wanted: set[str],
    log_dir: Path,
    *,
    profile: bool = False,
    traces: bool = False,
) -> tuple[list[Row], dict[str, Any]]:
    """Every run of every scenario gets a control plane of its own (`fresh_bench`): on a shared
    one, later scenarios inherited the objects, watch caches and API server memory of the
    earlier ones (B1 after B0 cost kube-apiserver 35 ms of CPU per step, against 26 on a
    fresh one; B4 reached 25 durable reports/s after B0-B3, 75/s alone), so each figure
    depended on what ran before it, and repeats were not alike."""
    series: dict[str, Any] = {}
    rows: list[Row] = []
    ceiling: float | None = None

    def plan(scenario: Callable[[Bench], Awaitable[Row]]) -> Scenario:
        async def one(bench: Bench) -> list[Row]:
            return [await scenario(bench)]

        return one

    async def repeat(name: str, times: int, scenario: Scenario) -> list[Row]:
        return await _repeat(
            name, times, scenario, lambda: fresh_bench(sizes, log_dir, series, profile=profile)
        )

    if "S" in wanted:
        runs = 20 if sizes.b1_agents > 5 else 3
        rows += await repeat("S", 1, plan(lambda b: s_sequential(b, runs=runs)))
    if "B0" in wanted:
        rows += await repeat("B0", sizes.repeats, plan(b0_ceiling))
        ceiling = rows[-1]["status_patches_per_s"]
    if "B1" in wanted:
        rows += await repeat("B1", sizes.repeats, lambda b: b1_drain(b, ceiling))
    if traces:

        async def traced(bench: Bench) -> Row:
            with Jaeger(work_dir=log_dir / "jaeger") as jaeger:
                return await b1_traced(bench, jaeger)

        rows += await repeat("traces", 1, plan(traced))
    if "B2" in wanted:
        rows += await repeat("B2", sizes.repeats, plan(b2_rate))
    if "B3" in wanted:
        rows += await repeat("B3", sizes.repeats, b3_latency)
    if "B4" in wanted:

        async def b4_both(bench: Bench) -> list[Row]:
            return [
                await b4_ingestion(bench, ceiling),
                await b4_ingestion(bench, ceiling, heartbeats_only=True),
            ]

        rows += await repeat("B4", sizes.repeats, b4_both)
    if "B5" in wanted:
        rows += await repeat("B5", 1, plan(b5_scale))
    return rows, series


@contextlib.asynccontextmanager
async def fresh_bench(
    sizes: Sizes, log_dir: Path, series: dict[str, Any], *, profile: bool
) -> AsyncIterator[Bench]:
    """A Bench on a control plane started for it (with the audit log that attributes
    every write to its writer, bench/audit.py), stopped and removed afterwards."""
    with ControlPlane(audit=True) as cp:
        install_crds(cp)
        print(f"    control plane up in {sum(cp.timings.values()):.1f}s", flush=True)
        kube = BenchKube.from_kubeconfig(str(cp.kubeconfig), qps=100_000, burst=100_000)
        try:
            yield Bench(
                cp=cp, kube=kube, sizes=sizes, log_dir=log_dir, profile=profile, series=series
            )
        finally:
            await kube.aclose()


async def _repeat(
    name: str,
    times: int,
    scenario: Scenario,
    fresh: Callable[[], contextlib.AbstractAsyncContextManager[Bench]],
) -> list[Row]:
    """Run `scenario` `times` times (once unless it is in REPEATED), each on a `fresh`
    Bench, and fold each of its rows into median and min-max (`spread.fold`)."""
    times = times if name in REPEATED else 1
    by_name: dict[str, list[Row]] = {}
    for attempt in range(times):
        print(f"  {name} run {attempt + 1}/{times}", flush=True)
        async with fresh() as bench:
            for row in await scenario(bench):
                by_name.setdefault(row["scenario"], []).append(row)
                _show(row)
    folded = [fold(runs) for runs in by_name.values()]
    if times > 1:
        for row in folded:
            _show(row)
    return folded


def _show(row: dict[str, Any]) -> None:
    print(
        f"  {row['scenario']}: "
        + ", ".join(f"{k}={v}" for k, v in row.items() if k not in report.NOT_SHOWN),
        flush=True,
    )
    for problem in row.get("problems") or []:
        print(f"    PROBLEM {problem}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ops-Core benchmarks (issue 8)")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--scenarios", default=",".join(ALL))
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--b5-objects", type=int, help="agents (and workflows) in B5")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the operator with py-spy in B1 (one-step) and write OUT-profile.md",
    )
    parser.add_argument("--repeats", type=int, help="runs of each headline scenario")
    parser.add_argument(
        "--traces",
        action="store_true",
        help="B1's 3-step drain twice, tracing off and on (OTLP to Jaeger); alone with"
        " --scenarios none",
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped by its pid.
    signal.signal(signal.SIGTERM, _interrupt)
    wanted = {s.strip().upper() for s in args.scenarios.split(",") if s.strip()}
    log_dir = Path(tempfile.mkdtemp(prefix="opscore-bench-"))
    started = time.time()
    load_before = os.getloadavg()
    ticks_before = machine_ticks()
    print(f"logs in {log_dir}", flush=True)
    sizes = SIZES[args.size]
    if args.b5_objects:
        sizes = dataclasses.replace(sizes, b5_objects=args.b5_objects)
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    rows, series = asyncio.run(
        run(sizes, wanted, log_dir, profile=args.profile, traces=args.traces)
    )
    meta = {
        "machine": report.machine(),
        "size": args.size,
        "command": "python -m opscore_testbed.bench "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "kubernetes": "v1.36.3 (local kube-apiserver + etcd 3.6.16)",
        # Other work on the machine skews wall-clock figures: the 1/5/15-minute load.
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        # On a VM the hypervisor may run others on "our" cores: figures of a run with
        # much stolen time are slower than the code.
        "cpu_steal_pct": steal_percent(ticks_before, machine_ticks()),
        "repeats": sizes.repeats,
    }
    report.save(args.out, rows, meta)
    report.chart(args.out.with_suffix(".png"), series)
    print()
    print(report.table(rows))
    print(f"\nsaved {args.out} and {args.out.with_suffix('.png')}")
    if args.profile:
        written = report.profiles(args.out, rows, meta)
        print("profile: " + (", ".join(map(str, written)) or "none (B1 did not run)"))
    found = [f"{row['scenario']}: {p}" for row in rows for p in row.get("problems") or []]
    if found:
        print(f"FAILED: {len(found)} problem(s); the figures above are not valid", file=sys.stderr)
        for problem in found:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
