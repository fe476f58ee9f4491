"""The README's benchmark table is written from the results: medians with their spread,
verdicts computed against issue 20's targets, and `n/a` for what did not run."""

from __future__ import annotations

import json
from pathlib import Path

from opscore_testbed.bench.readme_table import table


def b1(per_min: float, writes: float) -> dict[str, object]:
    return {
        "scenario": "B1 drain 500x1-step",
        "runs": 3,
        "workflows_per_min": per_min,
        "api_writes_per_step": writes,
        "cpu_operator_ms_per_step": 4.0,
        "spread": {"workflows_per_min": [per_min - 100, per_min + 50]},
    }


def line(text: str, title: str) -> str:
    return next(row for row in text.splitlines() if row.startswith(f"| {title}"))


def test_a_median_meeting_its_target_reads_met_with_its_spread() -> None:
    row = line(table({"scenarios": [b1(2100, 3.0)]}), "B1: 500 one-step")
    assert "2,100 runs/min [2,000-2,150]" in row
    assert ">= 2,000/min: met" in row
    assert "<= 3.1: met" in row
    assert "(3 runs)" in row


def test_a_median_missing_its_target_reads_missed() -> None:
    row = line(table({"scenarios": [b1(1646, 3.22)]}), "B1: 500 one-step")
    assert ">= 2,000/min: **missed**" in row
    assert "<= 3.1: **missed**" in row


def test_a_scenario_that_did_not_run_is_not_measured_never_met() -> None:
    row = line(table({"scenarios": []}), "B4: 100 agents")
    assert "n/a" in row
    assert "**not measured**" in row
    assert "met" not in row.replace("not measured", "")


def test_the_durable_b4_row_is_not_the_heartbeats_row() -> None:
    rows = [
        {"scenario": "B4 ingestion, heartbeats only", "max_reports_per_s_at_p99_le_100ms": 900},
        {"scenario": "B4 ingestion", "max_reports_per_s_at_p99_le_100ms": 120},
    ]
    text = table({"scenarios": rows})
    assert "120 reports/s" in line(text, "B4: 100 agents")
    assert "900 reports/s" in line(text, "B4: heartbeats")


def test_b4s_target_counts_the_durable_reports_not_the_whole_mix() -> None:
    """Half of B4's reports are heartbeats: 300 reports/s in all is 150 durable ones."""
    row = {
        "scenario": "B4 ingestion",
        "max_reports_per_s_at_p99_le_100ms": 300,
        "durable_reports_per_s_at_max": 150,
        "durable_p99_ms_at_max": 80.0,
    }
    text = line(table({"scenarios": [row]}), "B4: 100 agents")
    assert "all 300 reports/s" in text
    assert "of which durable 150/s" in text
    assert "durable >= 250/s: **missed**" in text


def test_b4s_row_names_how_busy_the_machine_was_where_it_missed() -> None:
    row = {
        "scenario": "B4 ingestion",
        "durable_reports_per_s_at_max": 137.3,
        "machine_busy_cores_at_first_miss": 1.64,
    }
    assert "machine at the first miss 1.64 busy cores" in line(
        table({"scenarios": [row]}), "B4: 100 agents"
    )


def test_the_readmes_table_is_the_one_the_committed_results_print() -> None:
    """The README promises its table is printed from bench/results/latest.json: a run
    committed without the table, or a table edited by hand, fails here."""
    root = Path(__file__).resolve().parents[3]
    results = json.loads((root / "bench" / "results" / "latest.json").read_text())
    readme = (root / "README.md").read_text()
    assert table(results) in readme, (
        "README.md's table is not what bench/results/latest.json prints: paste the output "
        "of `python -m opscore_testbed.bench.readme_table bench/results/latest.json`"
    )
