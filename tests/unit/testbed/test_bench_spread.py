"""Repeated runs folded into one row: medians, min-max beside them, every run's problems."""

from __future__ import annotations

import pytest

from opscore_testbed.bench.spread import fold


def test_three_runs_report_the_median_and_the_range() -> None:
    row = fold(
        [
            {"scenario": "B1", "workflows_per_min": 1400, "p99_ms": 30.0, "problems": []},
            {"scenario": "B1", "workflows_per_min": 1600, "p99_ms": 20.0, "problems": []},
            {"scenario": "B1", "workflows_per_min": 1500, "p99_ms": 40.0, "problems": []},
        ]
    )
    assert row["workflows_per_min"] == 1500
    assert row["p99_ms"] == 30.0
    assert row["spread"] == {"workflows_per_min": [1400, 1600], "p99_ms": [20.0, 40.0]}
    assert row["runs"] == 3
    assert len(row["raw_runs"]) == 3


def test_one_failed_run_fails_the_folded_row() -> None:
    row = fold(
        [
            {"scenario": "B1", "workflows_per_min": 1, "problems": []},
            {"scenario": "B1", "workflows_per_min": 2, "problems": ["3 never finished"]},
        ]
    )
    assert row["problems"] == ["run 2: 3 never finished"]


def test_non_numeric_figures_come_from_the_run_nearest_the_median() -> None:
    row = fold(
        [
            {"scenario": "B2", "window_s": 20, "best": 10, "steps": ["a"]},
            {"scenario": "B2", "window_s": 20, "best": 20, "steps": ["b"]},
            {"scenario": "B2", "window_s": 20, "best": 90, "steps": ["c"]},
        ]
    )
    assert row["steps"] == ["b"]


def test_a_single_run_is_kept_as_is() -> None:
    assert fold([{"scenario": "S", "p50_ms": 3.0}]) == {"scenario": "S", "p50_ms": 3.0, "runs": 1}


def test_runs_of_different_scenarios_are_refused() -> None:
    with pytest.raises(ValueError, match="mixes"):
        fold([{"scenario": "B1"}, {"scenario": "B2"}])


def test_a_figure_only_some_runs_measured_is_none_not_the_median_of_those_that_did() -> None:
    row = fold(
        [
            {"scenario": "B4", "best": 400, "holds_at_per_s": None},
            {"scenario": "B4", "best": 420, "holds_at_per_s": 300},
            {"scenario": "B4", "best": 380, "holds_at_per_s": 200},
        ]
    )
    assert row["best"] == 400
    assert row["holds_at_per_s"] is None
    assert "holds_at_per_s" not in row["spread"]
    assert row["partial"] == {"holds_at_per_s": 2}


def test_a_yes_no_figure_the_runs_disagree_on_is_none_with_how_many_said_yes() -> None:
    row = fold(
        [
            {"scenario": "B4", "best": 400, "held": True, "capped": False},
            {"scenario": "B4", "best": 420, "held": False, "capped": False},
            {"scenario": "B4", "best": 380, "held": False, "capped": False},
        ]
    )
    assert row["held"] is None  # the representative run (best 400) said True
    assert row["true_in"] == {"held": 1}
    assert row["capped"] is False
    assert "held" not in row["spread"]
