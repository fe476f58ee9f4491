"""`python -m opscore_testbed.bench [--size smoke|full] [--scenarios B0,B1,...]`.

Starts a local control plane, runs each scenario against the real processes (sidecar,
operator, AgentKit simulator with instant agents), prints a table, and writes
bench/results/latest.json and bench/results/latest.png. Exits 1 when any scenario's workflows did
not all finish within its wait or did not all succeed (the figures would be of a broken run);
a scenario that cannot finish at all (B5 never settling) raises, which exits non-zero too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opscore_testbed.bench import report, scenarios
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.traced import b1_traced
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.jaeger import Jaeger
from opscore_testbed.stack import REPO, install_crds

RESULTS = REPO / "bench" / "results"
ALL = ("S", "B0", "B1", "B2", "B3", "B4", "B5")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def run(
    cp: ControlPlane,
    sizes: scenarios.Sizes,
    wanted: set[str],
    log_dir: Path,
    *,
    traces: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    kube = BenchKube.from_kubeconfig(str(cp.kubeconfig), qps=100_000, burst=100_000)
    bench = scenarios.Bench(cp=cp, kube=kube, sizes=sizes, log_dir=log_dir)
    rows: list[dict[str, Any]] = []
    ceiling: float | None = None
    try:
        if "S" in wanted:
            rows.append(await scenarios.s_sequential(bench, runs=20 if sizes.b1_agents > 5 else 3))
            _show(rows[-1])
        if "B0" in wanted:
            rows.append(await scenarios.b0_ceiling(bench))
            ceiling = rows[-1]["status_patches_per_s"]
            _show(rows[-1])
        if "B1" in wanted:
            for row in await scenarios.b1_drain(bench, ceiling):
                rows.append(row)
                _show(row)
        if traces:
            with Jaeger(work_dir=log_dir / "jaeger") as jaeger:
                rows.append(await b1_traced(bench, jaeger))
            _show(rows[-1])
        if "B2" in wanted:
            rows.append(await scenarios.b2_rate(bench))
            _show(rows[-1])
        if "B3" in wanted:
            for row in await scenarios.b3_latency(bench):
                rows.append(row)
                _show(row)
        if "B4" in wanted:
            rows.append(await scenarios.b4_ingestion(bench, ceiling))
            _show(rows[-1])
            rows.append(await scenarios.b4_ingestion(bench, ceiling, heartbeats_only=True))
            _show(rows[-1])
        if "B5" in wanted:
            rows.append(await scenarios.b5_scale(bench))
            _show(rows[-1])
    finally:
        await kube.aclose()
    return rows, bench.series


def _show(row: dict[str, Any]) -> None:
    print(
        f"  {row['scenario']}: " + ", ".join(f"{k}={v}" for k, v in row.items() if k != "scenario"),
        flush=True,
    )
    for problem in row.get("problems") or []:
        print(f"    PROBLEM {problem}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ops-Core benchmarks (issue 8)")
    parser.add_argument("--size", choices=sorted(scenarios.SIZES), default="full")
    parser.add_argument("--scenarios", default=",".join(ALL))
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--b5-objects", type=int, help="agents (and workflows) in B5")
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
    with ControlPlane() as cp:
        install_crds(cp)
        print(f"control plane up in {sum(cp.timings.values()):.1f}s; logs in {log_dir}", flush=True)
        sizes = scenarios.SIZES[args.size]
        if args.b5_objects:
            sizes = dataclasses.replace(sizes, b5_objects=args.b5_objects)
        rows, series = asyncio.run(run(cp, sizes, wanted, log_dir, traces=args.traces))
    meta = {
        "machine": report.machine(),
        "size": args.size,
        "command": "python -m opscore_testbed.bench "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "kubernetes": "v1.36.3 (local kube-apiserver + etcd 3.6.16)",
    }
    report.save(args.out, rows, meta)
    report.chart(args.out.with_suffix(".png"), series)
    print()
    print(report.table(rows))
    print(f"\nsaved {args.out} and {args.out.with_suffix('.png')}")
    found = [f"{row['scenario']}: {p}" for row in rows for p in row.get("problems") or []]
    if found:
        print(f"FAILED: {len(found)} problem(s); the figures above are not valid", file=sys.stderr)
        for problem in found:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
