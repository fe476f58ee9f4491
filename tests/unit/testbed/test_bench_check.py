"""`make bench-check`: a regression beyond 15% and the measured spread fails the check; noise
the runs themselves show, an outlier run, or a small change does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opscore_testbed.bench.check import (
    CheckError,
    change,
    compare,
    compare_metric,
    host_moved,
    main,
    without_outliers,
)


def results(size: str = "full", **rows: dict[str, Any]) -> dict[str, Any]:
    return named(rows, size)


def named(rows: dict[str, dict[str, Any]], size: str = "full") -> dict[str, Any]:
    """A results file of these rows by scenario name (names like "B0 ceiling" too)."""
    return {"meta": {"size": size}, "scenarios": [{"scenario": k, **v} for k, v in rows.items()]}


def runs(metric: str, *values: float) -> dict[str, Any]:
    """A folded row: the median as the figure, each run's value in raw_runs."""
    ordered = sorted(values)
    return {metric: ordered[len(ordered) // 2], "raw_runs": [{metric: v} for v in values]}


def test_a_throughput_30_percent_lower_is_a_regression() -> None:
    verdict = compare_metric("B1", "workflows_per_min", [1500, 1520, 1510], [1050, 1060, 1040])
    assert verdict.outcome == "regression"


def test_writes_per_step_20_percent_higher_is_a_regression() -> None:
    assert compare_metric("B1", "api_writes_per_step", [3.0], [3.6]).outcome == "regression"


def test_a_10_percent_drop_warns_without_failing() -> None:
    verdict = compare_metric("B1", "workflows_per_min", [1000, 1000, 1000], [900, 900, 900])
    assert verdict.outcome == "warning"


def test_a_20_percent_drop_within_the_runs_own_spread_is_not_a_regression() -> None:
    # The baseline's runs range 30% either side of their median: 20% is noise here.
    verdict = compare_metric("B1", "workflows_per_min", [700, 1000, 1300], [800, 800, 800])
    assert verdict.outcome == "ok"


def test_one_outlier_run_does_not_hide_a_regression() -> None:
    # Without the MAD rule the 5000 would widen the spread past the 30% drop.
    verdict = compare_metric("B1", "workflows_per_min", [1000, 1010, 5000], [700, 700, 705])
    assert verdict.outcome == "regression"


def test_the_mad_rule_drops_a_far_run_and_keeps_close_ones() -> None:
    assert without_outliers([100, 101, 150]) == [100, 101]
    assert without_outliers([100, 100, 100]) == [100, 100, 100]


def test_a_faster_run_is_an_improvement_not_a_regression() -> None:
    assert compare_metric("B3", "p99_ms", [40.0], [20.0]).outcome == "improved"


def test_writes_appearing_where_there_were_none_are_a_regression() -> None:
    assert compare_metric("B5", "cold_start_api_writes", [0], [4]).outcome == "regression"


def test_results_of_another_size_are_refused() -> None:
    base = results("full", B0={"status_patches_per_s": 300})
    run = results("smoke", B0={"status_patches_per_s": 300})
    with pytest.raises(CheckError, match="SIZE=full"):
        compare(base, run)


def test_scenarios_the_run_skipped_are_listed_not_failed() -> None:
    base = results(B0={"status_patches_per_s": 300}, B3={"p99_ms": 30})
    verdicts, not_run = compare(base, results(B0={"status_patches_per_s": 300}))
    assert [v.outcome for v in verdicts] == ["ok"]
    assert not_run == ["B3"]


def test_the_command_exits_1_on_a_planted_slower_run(tmp_path: Path) -> None:
    baseline, slower = tmp_path / "base.json", tmp_path / "slower.json"
    baseline.write_text(json.dumps(results(B1=runs("workflows_per_min", 1500, 1510, 1490))))
    slower.write_text(json.dumps(results(B1=runs("workflows_per_min", 1000, 1010, 990))))
    assert main(["--baseline", str(baseline), "--run", str(slower)]) == 1
    assert main(["--baseline", str(baseline), "--run", str(baseline)]) == 0


def test_the_command_exits_2_on_a_file_that_is_not_results(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    assert main(["--baseline", str(junk), "--run", str(junk)]) == 2


def test_the_change_says_which_way_in_words() -> None:
    # A higher-is-better figure that went up is better, not "-113 %".
    verdict = compare_metric("B2", "workflows_per_min", [1000.0] * 3, [2130.0] * 3)
    assert verdict.outcome == "improved"
    assert change(verdict.worse_by) == "113.0% better"
    assert change(0.12) == "12.0% worse"
    assert change(0.0) == "0.0%"
    assert change(float("inf")) == "all the way worse"


def test_a_slower_host_is_named_when_b0s_ceiling_moved() -> None:
    # 2026-12-05 vs 2026-12-07: the same code, B0 943 -> 546 PATCH/s.
    base = {"B0 ceiling": runs("status_patches_per_s", 943, 930, 960)}
    slower = {"B0 ceiling": runs("status_patches_per_s", 546, 512, 560)}
    verdicts, _ = compare(named(base), named(slower))
    moved = host_moved(verdicts)
    assert moved is not None
    assert "hosts differ" in moved
    assert "42.1% worse" in moved
    same, _ = compare(named(base), named(base))
    assert host_moved(same) is None


def test_a_ceiling_that_moved_within_its_spread_names_no_host() -> None:
    base = {"B0 ceiling": runs("status_patches_per_s", 546, 512, 656)}
    run = {"B0 ceiling": runs("status_patches_per_s", 650, 520, 700)}
    verdicts, _ = compare(named(base), named(run))
    assert host_moved(verdicts) is None  # 19% up, but the runs spread 20% themselves


def test_the_operators_share_of_kube_apiservers_cpu_is_checked() -> None:
    base = {"B1": runs("cpu_operator_vs_kube_apiserver", 0.29, 0.30, 0.29)}
    costlier = {"B1": runs("cpu_operator_vs_kube_apiserver", 0.40, 0.41, 0.39)}
    verdicts, _ = compare(named(base), named(costlier))
    assert [v.outcome for v in verdicts] == ["regression"]
