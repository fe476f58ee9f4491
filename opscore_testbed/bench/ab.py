"""`make bench-ab BASE=<ref>`: B1 (or B3) on two versions of Ops-Core, interleaved in one
session.

This host's speed moves by 30 % within hours and by 10-15 % within minutes
(docs/performance.md), so `make bench-check` between two sessions cannot see a 10 % change
in the operator's CPU. This can: it runs B1 (`--scenarios B1 --repeats 1`; `--scenarios
B1,B3` or `B3` for the step-advance latency too) alternately on
the base (a `git worktree` of BASE) and on the candidate (this checkout as it is, uncommitted
changes included, or CANDIDATE), in ABBA order (base, cand, cand, base, base, ...) so a
steady drift lands on both sides alike, and compares each pair's figures by ratio.

A figure is called better or worse only when every pair moved the same way *and* the median
of the pairs' ratios moved by more than `THRESHOLD` (5 % in B1, `check.WARN`; 25 % in B3,
whose latencies swing more); anything else is "no change shown". With 3 pairs, noise alone
points every pair the same way a quarter of the time (2 x 0.5^3): the threshold guards that;
`--pairs 5` brings it to 6 %. Exits 1 when a figure in `TRACKED` is worse, or a run failed;
0 otherwise. Tracked are the figures an A/B of the same code against itself left alone, and
that a planted fault moved: in B1 the operator's and the sidecar's CPU as shares of
kube-apiserver's, and writes per step; in B3 the median step advance. CPU per step and runs per
minute are shown, never judged: on this host they moved by up to 60 % between two runs of
one pair; so are B3's tail figures, a few slow API answers each.

    python -m opscore_testbed.bench.ab --base REF [--candidate REF] [--pairs 3] [--scenarios B1,B3]
    python -m opscore_testbed.bench.ab --base REF --from DIR   # judge saved runs again

Each side's bench runs from its own tree (its code, its bench, its manifests): PYTHONPATH
puts the tree's packages ahead of the editable install, and every process the bench starts
inherits it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opscore_testbed.bench.check import HIGHER_IS_BETTER, WARN
from opscore_testbed.stack import REPO

#: The scenarios an A/B can run: each row's figures, by the scenario its row belongs to.
SCENARIOS = ("B1", "B3")
#: Figures a worse verdict on fails the A/B. Only figures that held still between two runs
#: of the same code: B1's shares of kube-apiserver's CPU (both processes serve the same
#: steps in the same window, so the host's speed cancels) and its writes, which are counts;
#: B3's median (hundreds of gaps each).
TRACKED: dict[str, tuple[str, ...]] = {
    "B1": (
        "cpu_operator_vs_kube_apiserver",
        "cpu_sidecar_vs_kube_apiserver",
        "api_writes_per_step",
    ),
    "B3": ("p50_ms",),
}
#: Shown beside them, never failing: an A/B of the same code against itself read the
#: sidecar's CPU per step 1.23, 1.61 and 1.01 in its three pairs (docs/performance.md);
#: B3's p99 is its 4th-slowest gap of ~330, decided by a few slow API answers.
SHOWN: dict[str, tuple[str, ...]] = {
    "B1": (
        "cpu_operator_ms_per_step",
        "cpu_sidecar_ms_per_step",
        "cpu_kube_apiserver_ms_per_step",
        "workflows_per_min",
    ),
    "B3": ("p95_ms", "p99_ms"),
}
#: How far the median of the pairs' ratios must move for a verdict. B1's shares and writes
#: held within a few % between two runs of the same code; B3's latencies did not: an A/B
#: of the same code against itself (3 pairs, 2026-12-08) read the median gap 0.66-1.09 of
#: itself per pair, and 0.82 in median at 10 reports/s with all three pairs lower.
THRESHOLD: dict[str, float] = {"B1": WARN, "B3": 0.25}
#: How long one side's run may take (B1 takes 1.5-2 minutes here, B3 about one).
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Verdict:
    scenario: str
    metric: str
    base: list[float]
    candidate: list[float]
    ratios: list[float]  # candidate / base, pair by pair
    verdict: str  # "better", "worse" or "no change shown"


def judge(
    scenario: str,
    metric: str,
    base: list[float],
    candidate: list[float],
    threshold: float = WARN,
) -> Verdict:
    """The paired verdict on one figure (see the module docstring for the rule)."""
    ratios = [c / b for b, c in zip(base, candidate, strict=True) if b]
    verdict = "no change shown"
    if ratios and len(ratios) == len(base):
        middle = statistics.median(ratios)
        higher_is_better = metric in HIGHER_IS_BETTER
        if all(r > 1 for r in ratios) and middle > 1 + threshold:
            verdict = "better" if higher_is_better else "worse"
        elif all(r < 1 for r in ratios) and middle < 1 - threshold:
            verdict = "worse" if higher_is_better else "better"
    return Verdict(scenario, metric, base, candidate, ratios, verdict)


def compare(base_runs: list[dict[str, Any]], cand_runs: list[dict[str, Any]]) -> list[Verdict]:
    """Verdicts on every tracked and shown figure of every row both sides have."""
    verdicts: list[Verdict] = []
    for scenario in _scenarios(base_runs[0]):
        family = scenario.split()[0]
        for metric in (*TRACKED[family], *SHOWN[family]):
            base = [_figure(run, scenario, metric) for run in base_runs]
            cand = [_figure(run, scenario, metric) for run in cand_runs]
            if None in base or None in cand:
                continue
            verdicts.append(
                judge(scenario, metric, base, cand, THRESHOLD[family])  # type: ignore[arg-type]
            )
    return verdicts


def failed(verdicts: list[Verdict]) -> list[Verdict]:
    return [
        v for v in verdicts if v.verdict == "worse" and v.metric in TRACKED[v.scenario.split()[0]]
    ]


def _scenarios(run: dict[str, Any]) -> list[str]:
    """The rows an A/B judges: B1's drains and B3's rates (not the S row, nor others)."""
    return [
        row["scenario"]
        for row in run["scenarios"]
        if row["scenario"].startswith(("B1 drain", "B3 step-advance"))
    ]


def _figure(run: dict[str, Any], scenario: str, metric: str) -> float | None:
    for row in run["scenarios"]:
        if row["scenario"] == scenario:
            value = row.get(metric)
            return float(value) if isinstance(value, int | float) else None
    return None


def order(pairs: int) -> list[str]:
    """ABBA: base first in even pairs, the candidate first in odd ones."""
    sides: list[str] = []
    for i in range(pairs):
        sides += ["base", "candidate"] if i % 2 == 0 else ["candidate", "base"]
    return sides


@contextlib.contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """A detached checkout of `ref` in a temporary directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="opscore-ab-")) / "tree"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), ref],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
            check=False,
            capture_output=True,
        )


def run_bench(tree: Path, scenarios: list[str], out: Path) -> dict[str, Any]:
    """One run of `scenarios` by the bench in `tree`, with `tree`'s packages; its results."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "operator"), str(tree)])
    argv = [sys.executable, "-m", "opscore_testbed.bench", "--size", "full"]
    argv += ["--scenarios", ",".join(scenarios), "--repeats", "1", "--out", str(out)]
    subprocess.run(argv, cwd=tree, env=env, check=True, timeout=RUN_TIMEOUT_S)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def table(
    verdicts: list[Verdict], base: str, candidate: str, pairs: int, scenarios: list[str]
) -> list[str]:
    which = " and ".join(scenarios)
    lines = [
        f"A/B of {which}, {pairs} pairs in ABBA order: base {base}, candidate {candidate}",
        "",
        "| scenario | figure | base | candidate | candidate / base, per pair | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        ratios = ", ".join(f"{r:.3f}" for r in v.ratios)
        base_runs = ", ".join(f"{x:g}" for x in v.base)
        cand_runs = ", ".join(f"{x:g}" for x in v.candidate)
        lines.append(
            f"| {v.scenario} | {v.metric} | {base_runs} | {cand_runs} | {ratios} | {v.verdict} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="a git ref: what the candidate is to beat")
    parser.add_argument("--candidate", help="a git ref (default: this checkout as it is)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--scenarios", default="B1", help=f"comma-separated, of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument(
        "--from",
        dest="saved",
        type=Path,
        help="judge the runs an earlier A/B saved in this directory instead of running",
    )
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown or not args.scenarios:
        parser.error(f"--scenarios takes {', '.join(SCENARIOS)}, not {', '.join(unknown)}")
    runs = saved_runs(args.saved) if args.saved else run_pairs(args)
    if runs is None:
        return 1
    verdicts = compare(runs["base"], runs["candidate"])
    lines = table(
        verdicts, args.base, args.candidate or "this checkout", len(runs["base"]), args.scenarios
    )
    worse = failed(verdicts)
    lines += ["", f"worse: {len(worse)} tracked figure(s)" if worse else "worse: none"]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 1 if worse else 0


def saved_runs(work: Path) -> dict[str, list[dict[str, Any]]]:
    """The results files an A/B left in `work` (`NN-base.json`, `NN-candidate.json`), in
    the order they ran."""
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "candidate": []}
    for path in sorted(work.glob("[0-9][0-9]-*.json")):
        runs[path.stem.split("-", 1)[1]].append(json.loads(path.read_text()))
    if not runs["base"] or len(runs["base"]) != len(runs["candidate"]):
        raise SystemExit(f"{work} holds no complete pairs of A/B results")
    return runs


def run_pairs(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]] | None:
    """Run the pairs; None when a run failed."""
    work = Path(tempfile.mkdtemp(prefix="opscore-ab-results-"))
    print(f"  results in {work} (judge them again with --from)", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "candidate": []}
    with contextlib.ExitStack() as stack:
        trees = {
            "base": stack.enter_context(worktree(args.base)),
            "candidate": stack.enter_context(worktree(args.candidate)) if args.candidate else REPO,
        }
        for i, side in enumerate(order(args.pairs)):
            print(f"  A/B run {i + 1}/{2 * args.pairs}: {side} ({trees[side]})", flush=True)
            try:
                out = work / f"{i:02d}-{side}.json"
                runs[side].append(run_bench(trees[side], args.scenarios, out))
            except subprocess.CalledProcessError as exc:
                which = ",".join(args.scenarios)
                print(f"{which} on the {side} failed (exit {exc.returncode})", file=sys.stderr)
                return None
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
