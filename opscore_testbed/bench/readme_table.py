"""The README's benchmark table, written from a results file (never by hand).

`python -m opscore_testbed.bench.readme_table bench/results/latest.json` prints the
Markdown table: each headline figure as the median of its runs with [min-max], its
target from issue 20 and whether the median meets it. A figure the results do not hold
prints as `n/a`, so a scenario that did not run cannot read as met.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """One number of one scenario row, how to print it, and its target (if any)."""

    key: str
    label: str
    unit: str = ""
    target: Callable[[float], bool] | None = None
    target_text: str = ""
    digits: int = 0


@dataclass(frozen=True)
class Line:
    scenario: str  # the row's `scenario`, matched as a prefix
    title: str
    figures: tuple[Figure, ...]


LINES = (
    Line(
        "S sequential",
        "S: 3-step runs one at a time, idle system",
        (
            Figure("apply_to_succeeded_p50_ms", "create -> Succeeded p50", " ms"),
            Figure("step_advance_p50_ms", "report -> next dispatch p50", " ms"),
        ),
    ),
    Line(
        "B0 ceiling",
        "B0: the API server's status-PATCH ceiling (its own count)",
        (Figure("status_patches_per_s", "", " PATCH/s"),),
    ),
    Line(
        "B1 drain 500x1-step",
        "B1: 500 one-step runs queued, 20 agents",
        (
            Figure("workflows_per_min", "", " runs/min", lambda v: v >= 2000, ">= 2,000/min"),
            Figure(
                "api_writes_per_step",
                "",
                " Ops-Core writes/step",
                lambda v: v <= 3.1,
                "<= 3.1",
                digits=2,
            ),
            Figure(
                "cpu_operator_ms_per_step",
                "operator CPU",
                " ms/step",
                lambda v: v <= 5.0,
                "<= 5 ms",
                digits=1,
            ),
            Figure("cpu_kube_apiserver_ms_per_step", "kube-apiserver CPU", " ms/step", digits=1),
            # The same run's ratio: what moves least between hosts (cpu.relative_cpu).
            Figure(
                "cpu_operator_vs_kube_apiserver", "operator CPU / kube-apiserver's", "", digits=2
            ),
            Figure("cpu_sidecar_ms_per_step", "sidecar CPU", " ms/step", digits=1),
            Figure("cpu_etcd_ms_per_step", "etcd CPU", " ms/step", digits=1),
        ),
    ),
    Line(
        "B1 drain 200x3-step",
        "B1: 200 three-step runs queued",
        (
            Figure("workflows_per_min", "", " runs/min"),
            Figure("api_writes_per_step", "", " Ops-Core writes/step", digits=2),
        ),
    ),
    Line(
        "B2 increasing rate",
        "B2: highest submission rate without a backlog (searched)",
        (Figure("max_sustained_workflows_per_min", "", " runs/min"),),
    ),
    Line(
        "B3 step-advance @50",
        "B3: report -> next dispatch at 50 reports/s",
        (Figure("p99_ms", "p99", " ms", lambda v: v <= 50, "<= 50 ms", digits=1),),
    ),
    Line(
        "B4 ingestion,",
        "B4: heartbeats only (searched)",
        (Figure("max_reports_per_s_at_p99_le_100ms", "", " reports/s at p99 <= 100 ms"),),
    ),
    Line(
        "B4 ingestion",
        "B4: 100 agents, half `idle` (durable), searched",
        (
            Figure("max_reports_per_s_at_p99_le_100ms", "all", " reports/s at p99 <= 100 ms"),
            Figure(
                "durable_reports_per_s_at_max",
                "of which durable",
                "/s",
                lambda v: v >= 250,
                "durable >= 250/s",
            ),
            Figure("durable_p99_ms_at_max", "durable p99", " ms", digits=1),
            # The same rate sent for `Sizes.b4_hold_seconds`, its last third judged: does
            # it hold once the API server's watch cache and heap have grown? And if not,
            # the highest of the lower rates tried that did (`holding.hold_down`).
            Figure(
                "held_durable_p99_ms",
                "held at that rate: durable p99",
                " ms",
                lambda v: v <= 100,
                "held at p99 <= 100 ms",
                digits=1,
            ),
            Figure(
                "holds_at_durable_per_s",
                "the highest rate that held: durable",
                "/s",
                lambda v: v >= 250,
                "held durable >= 250/s",
            ),
            # What bounds it: the machine's busy cores (load generator included) at the
            # first rate above the best, which missed.
            Figure(
                "machine_busy_cores_at_first_miss",
                "machine at the first miss",
                " busy cores",
                digits=2,
            ),
        ),
    ),
    Line(
        "B5 scale",
        "B5: 10,000 agents + 10,000 workflows",
        (
            Figure("operator_rss_mib", "operator", " MiB", lambda v: v < 512, "< 512 MiB", 1),
            Figure(
                "cold_start_settle_s", "cold start settles in", " s", lambda v: v < 60, "< 60 s", 1
            ),
            Figure("cold_start_api_writes", "cold start", " Ops-Core writes"),
        ),
    ),
)


def _find(rows: Sequence[Row], prefix: str) -> Row | None:
    """The row whose scenario starts with `prefix` ("B4 ingestion," is the heartbeats row;
    "B4 ingestion" alone must not match it)."""
    for row in rows:
        name = str(row.get("scenario", ""))
        if prefix == "B4 ingestion" and name != "B4 ingestion":
            continue
        if name.startswith(prefix):
            return row
    return None


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def cell(row: Row | None, figure: Figure) -> tuple[str, str]:
    """(the figure as printed, the verdict) for one row."""
    value = None if row is None else row.get(figure.key)
    if not isinstance(value, int | float):
        return f"{figure.label} n/a".strip(), ("**not measured**" if figure.target else "")
    text = _number(value, figure.digits) + figure.unit
    spread = (row or {}).get("spread", {}).get(figure.key)
    if spread and spread[0] != spread[1]:
        low, high = (_number(v, figure.digits) for v in spread)
        text += f" [{low}-{high}]"
    if figure.label:
        text = f"{figure.label} {text}"
    if figure.target is None:
        return text, ""
    verdict = "met" if figure.target(value) else "**missed**"
    return text, f"{figure.target_text}: {verdict}"


def table(results: dict[str, Any]) -> str:
    rows: list[Row] = results.get("scenarios", [])
    out = ["| scenario | median of the runs [min-max] | target |", "| --- | --- | --- |"]
    for line in LINES:
        row = _find(rows, line.scenario)
        cells = [cell(row, figure) for figure in line.figures]
        count = int(row.get("runs", 1)) if row is not None else 0
        runs = "" if row is None else f" ({count} run{'s' if count != 1 else ''})"
        figures = "; ".join(text for text, _ in cells)
        targets = "; ".join(verdict for _, verdict in cells if verdict)
        out.append(f"| {line.title}{runs} | {figures} | {targets} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The README's benchmark table from a results file")
    parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    meta = results.get("meta", {})
    print(table(results))
    print()
    print(
        f"Measured {meta.get('started', '?')} on {meta.get('machine', '?')}, "
        f"load before {meta.get('load_before')}, CPU stolen by the hypervisor "
        f"{meta.get('cpu_steal_pct', '?')} %: `{meta.get('command', '?')}` "
        f"({meta.get('duration_s', '?')} s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
