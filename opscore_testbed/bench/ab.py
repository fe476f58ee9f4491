"""`make bench-ab BASE=<ref>`: B1 on two versions of Ops-Core, interleaved in one session.

This host's speed moves by 30 % within hours and by 10-15 % within minutes
(docs/performance.md), so `make bench-check` between two sessions cannot see a 10 % change
in the operator's CPU. This can: it runs B1 (`--scenarios B1 --repeats 1`) alternately on
the base (a `git worktree` of BASE) and on the candidate (this checkout as it is, uncommitted
changes included, or CANDIDATE), in ABBA order (base, cand, cand, base, base, ...) so a
steady drift lands on both sides alike, and compares each pair's figures by ratio.

A figure is called better or worse only when every pair moved the same way *and* the median
of the pairs' ratios moved by more than `check.WARN` (5 %); anything else is "no change
shown". With 3 pairs, noise alone points every pair the same way a quarter of the time
(2 x 0.5^3): the threshold guards that; `--pairs 5` brings it to 6 %. Exits 1 when a
figure in `TRACKED` is worse, or a B1 run failed; 0 otherwise. Tracked are the figures an
A/B of the same code against itself left alone, and that a planted fault moved: the
operator's and the sidecar's CPU as shares of kube-apiserver's, and writes per step. CPU
per step and runs per minute are shown, never judged: on this host they moved by up to
60 % between two runs of one pair.

    python -m opscore_testbed.bench.ab --base REF [--candidate REF] [--pairs 3]
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

#: Figures a worse verdict on fails the A/B. Only figures that held still between two runs
#: of the same code: the shares of kube-apiserver's CPU (both processes serve the same
#: steps in the same window, so the host's speed cancels) and the writes, which are counts.
TRACKED = (
    "cpu_operator_vs_kube_apiserver",
    "cpu_sidecar_vs_kube_apiserver",
    "api_writes_per_step",
)
#: Shown beside them, never failing: an A/B of the same code against itself read the
#: sidecar's CPU per step 1.23, 1.61 and 1.01 in its three pairs (docs/performance.md).
SHOWN = (
    "cpu_operator_ms_per_step",
    "cpu_sidecar_ms_per_step",
    "cpu_kube_apiserver_ms_per_step",
    "workflows_per_min",
)
#: How long one side's B1 may take (it takes 1.5-2 minutes here).
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Verdict:
    scenario: str
    metric: str
    base: list[float]
    candidate: list[float]
    ratios: list[float]  # candidate / base, pair by pair
    verdict: str  # "better", "worse" or "no change shown"


def judge(scenario: str, metric: str, base: list[float], candidate: list[float]) -> Verdict:
    """The paired verdict on one figure (see the module docstring for the rule)."""
    ratios = [c / b for b, c in zip(base, candidate, strict=True) if b]
    verdict = "no change shown"
    if ratios and len(ratios) == len(base):
        middle = statistics.median(ratios)
        higher_is_better = metric in HIGHER_IS_BETTER
        if all(r > 1 for r in ratios) and middle > 1 + WARN:
            verdict = "better" if higher_is_better else "worse"
        elif all(r < 1 for r in ratios) and middle < 1 - WARN:
            verdict = "worse" if higher_is_better else "better"
    return Verdict(scenario, metric, base, candidate, ratios, verdict)


def compare(base_runs: list[dict[str, Any]], cand_runs: list[dict[str, Any]]) -> list[Verdict]:
    """Verdicts on every tracked and shown figure of every B1 row both sides have."""
    verdicts: list[Verdict] = []
    for scenario in _scenarios(base_runs[0]):
        for metric in (*TRACKED, *SHOWN):
            base = [_figure(run, scenario, metric) for run in base_runs]
            cand = [_figure(run, scenario, metric) for run in cand_runs]
            if None in base or None in cand:
                continue
            verdicts.append(judge(scenario, metric, base, cand))  # type: ignore[arg-type]
    return verdicts


def failed(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.verdict == "worse" and v.metric in TRACKED]


def _scenarios(run: dict[str, Any]) -> list[str]:
    return [row["scenario"] for row in run["scenarios"] if row["scenario"].startswith("B1 drain")]


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


def run_b1(tree: Path, out: Path) -> dict[str, Any]:
    """One B1 run of the bench in `tree`, with `tree`'s packages; its results file."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "operator"), str(tree)])
    argv = [sys.executable, "-m", "opscore_testbed.bench", "--size", "full"]
    argv += ["--scenarios", "B1", "--repeats", "1", "--out", str(out)]
    subprocess.run(argv, cwd=tree, env=env, check=True, timeout=RUN_TIMEOUT_S)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def table(verdicts: list[Verdict], base: str, candidate: str, pairs: int) -> list[str]:
    lines = [
        f"A/B of B1, {pairs} pairs in ABBA order: base {base}, candidate {candidate}",
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
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument(
        "--from",
        dest="saved",
        type=Path,
        help="judge the runs an earlier A/B saved in this directory instead of running",
    )
    args = parser.parse_args(argv)
    runs = saved_runs(args.saved) if args.saved else run_pairs(args)
    if runs is None:
        return 1
    verdicts = compare(runs["base"], runs["candidate"])
    lines = table(verdicts, args.base, args.candidate or "this checkout", len(runs["base"]))
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
    """Run the pairs; None when a B1 run failed."""
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
                runs[side].append(run_b1(trees[side], work / f"{i:02d}-{side}.json"))
            except subprocess.CalledProcessError as exc:
                print(f"B1 on the {side} failed (exit {exc.returncode})", file=sys.stderr)
                return None
    return runs


if __name__ == "__main__":
    raise SystemExit(main())
