"""`python -m opscore_testbed.chaos [--short] [--scenarios F1,...] [--soak-minutes N]`.

Starts a local control plane, runs each scenario against real processes (operator,
sidecar, AgentKit simulator), prints one row per scenario, writes the table as JSON, and
exits 1 when any guarantee is broken (`report.problems`: anything lost, delivered twice
unpredicted, answered otherwise than documented, or a scenario's own promise not kept).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from opscore_testbed.bench.report import machine
from opscore_testbed.chaos import report, suite
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.stack import REPO, install_crds

RESULTS = REPO / "chaos" / "results"
DEFAULT = ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12", "F13")
SHORT_DEFAULT = ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F9", "F10", "F11", "F12", "F13")


def _show(row: report.Row) -> None:
    figures = ", ".join(
        f"{k}={v}"
        for k, v in row.items()
        if k not in ("scenario", "problems", "verdicts", "evidence", "promises")
    )
    print(f"  {row['scenario']}: {figures}", flush=True)
    for key, names in (row.get("evidence") or {}).items():
        print(f"    {key}: {names}", flush=True)
    for problem in row.get("problems") or []:
        print(f"    PROBLEM {problem[-2000:]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ops-Core fault suite (issue 9)")
    parser.add_argument("--short", action="store_true", help="~20 workflows per scenario")
    parser.add_argument("--scenarios", help="comma-separated, e.g. F1,F3 (default: all)")
    parser.add_argument("--soak-minutes", type=float, default=20.0, help="F8's length")
    parser.add_argument("--seed", type=int, default=None, help="for the random kill moments")
    parser.add_argument("--out", type=Path, help="default chaos/results/latest[-short].json")
    args = parser.parse_args(argv)
    size = "short" if args.short else "full"
    default = SHORT_DEFAULT if args.short else DEFAULT
    wanted = [s.strip().upper() for s in (args.scenarios or ",".join(default)).split(",")]
    unknown = [s for s in wanted if s not in suite.SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(suite.SCENARIOS)}")
    seed = args.seed if args.seed is not None else int(time.time())
    out = args.out or RESULTS / ("latest-short.json" if args.short else "latest.json")
    log_dir = Path(tempfile.mkdtemp(prefix="opscore-chaos-"))
    started = time.time()
    with ControlPlane() as cp:
        install_crds(cp)
        print(f"control plane up; seed {seed}; logs in {log_dir}", flush=True)
        rows = asyncio.run(
            suite.run(
                cp,
                wanted,
                size=size,
                log_dir=log_dir,
                seed=seed,
                soak_minutes=args.soak_minutes,
                show=_show,
            )
        )
    meta = {
        "machine": machine(),
        "command": "python -m opscore_testbed.chaos "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "size": size,
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "kubernetes": "v1.36.3 (local kube-apiserver + etcd 3.6.16)",
        "note": "2 shared cores: timings are noisy; counts are what matter",
    }
    report.save(out, rows, meta)
    print()
    print(report.table(rows))
    print(f"\nsaved {out}")
    return verdict(rows)


def verdict(rows: list[report.Row]) -> int:
    """The exit code: 1, with one line per broken guarantee on stderr, when any row has a
    problem (`report.problems`); else 0."""
    found = report.problems(rows)
    if found:
        print(f"FAILED: {len(found)} problem(s)", file=sys.stderr)
        for problem in found:
            print(f"  {problem.splitlines()[0] if problem else problem}", file=sys.stderr)
        return 1
    print("OK: every guarantee checked held (docs/reliability.md, 'What fails the suite')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
