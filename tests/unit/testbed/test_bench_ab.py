"""The A/B's paired verdict: a figure moves only when every pair agrees and the median of
the pairs' ratios passes the threshold; the order of the runs is ABBA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opscore_testbed.bench.ab import (
    SCENARIOS,
    SHOWN,
    THRESHOLD,
    TRACKED,
    compare,
    failed,
    judge,
    main,
    order,
    saved_runs,
)
from opscore_testbed.bench.check import HIGHER_IS_BETTER, LOWER_IS_BETTER

ONE_STEP = "B1 drain 500x1-step"
AT_50 = "B3 step-advance @50 reports/s"


def run(**figures: float) -> dict[str, Any]:
    return {"scenarios": [{"scenario": ONE_STEP, **figures}, {"scenario": "B0 ceiling"}]}


def test_every_figure_has_a_direction() -> None:
    assert set(TRACKED) == set(SHOWN) == set(THRESHOLD) == set(SCENARIOS)
    for scenario in SCENARIOS:
        assert set(TRACKED[scenario]) | set(SHOWN[scenario]) <= HIGHER_IS_BETTER | LOWER_IS_BETTER


def test_operator_cpu_up_in_every_pair_by_more_than_the_threshold_is_worse() -> None:
    verdict = judge(ONE_STEP, "cpu_operator_ms_per_step", [5.0, 6.0, 5.5], [5.6, 6.6, 6.1])
    assert verdict.verdict == "worse"
    assert [round(r, 3) for r in verdict.ratios] == [1.12, 1.1, 1.109]


def test_a_pair_that_disagrees_shows_no_change() -> None:
    # The median moved 10 %, but one pair went the other way: the host, not the code.
    verdict = judge(ONE_STEP, "cpu_operator_ms_per_step", [5.0, 6.0, 5.5], [5.5, 5.9, 6.1])
    assert verdict.verdict == "no change shown"


def test_a_unanimous_move_under_the_threshold_shows_no_change() -> None:
    verdict = judge(ONE_STEP, "cpu_operator_ms_per_step", [5.0, 6.0, 5.5], [5.1, 6.1, 5.6])
    assert verdict.verdict == "no change shown"


def test_direction_follows_the_figure() -> None:
    assert judge(ONE_STEP, "workflows_per_min", [3000, 3100], [3400, 3500]).verdict == "better"
    assert judge(ONE_STEP, "cpu_operator_ms_per_step", [6.0, 6.2], [5.0, 5.1]).verdict == ("better")
    assert judge(ONE_STEP, "workflows_per_min", [3000, 3100], [2600, 2700]).verdict == "worse"


def test_only_a_worse_tracked_figure_fails() -> None:
    # CPU per step moved 60 % between two runs of the same code: shown, never judged.
    base = [run(cpu_operator_vs_kube_apiserver=0.29, cpu_operator_ms_per_step=5.0)] * 3
    cand = [run(cpu_operator_vs_kube_apiserver=0.29, cpu_operator_ms_per_step=8.0)] * 3
    verdicts = compare(base, cand)
    assert {(v.metric, v.verdict) for v in verdicts} == {
        ("cpu_operator_vs_kube_apiserver", "no change shown"),
        ("cpu_operator_ms_per_step", "worse"),
    }
    assert failed(verdicts) == []
    heavier = [run(cpu_operator_vs_kube_apiserver=0.40, cpu_operator_ms_per_step=5.0)] * 3
    assert [v.metric for v in failed(compare(base, heavier))] == ["cpu_operator_vs_kube_apiserver"]


def test_a_figure_one_side_lacks_is_left_out() -> None:
    base = [run(cpu_operator_ms_per_step=5.0)] * 2  # an older bench without the share
    cand = [run(cpu_operator_ms_per_step=5.0, cpu_operator_vs_kube_apiserver=0.3)] * 2
    assert [v.metric for v in compare(base, cand)] == ["cpu_operator_ms_per_step"]


def test_saved_runs_pair_up_in_the_order_they_ran(tmp_path: Path) -> None:
    for i, side in enumerate(order(2)):
        (tmp_path / f"{i:02d}-{side}.json").write_text(json.dumps(run(workflows_per_min=i)))
    runs = saved_runs(tmp_path)
    assert [_wpm(r) for r in runs["base"]] == [0, 3]  # base, cand, cand, base
    assert [_wpm(r) for r in runs["candidate"]] == [1, 2]


def _wpm(result: dict[str, Any]) -> float:
    value: float = result["scenarios"][0]["workflows_per_min"]
    return value


def test_runs_alternate_abba() -> None:
    assert order(3) == ["base", "candidate", "candidate", "base", "base", "candidate"]


def test_b3_rows_are_judged_on_their_median_and_show_their_tail() -> None:
    def both(p50: float, p99: float) -> dict[str, Any]:
        b1 = {"scenario": ONE_STEP, "cpu_operator_vs_kube_apiserver": 0.29}
        b3 = {"scenario": AT_50, "p50_ms": p50, "p99_ms": p99}
        return {"scenarios": [b1, b3, {"scenario": "S smoke"}]}

    base = [both(15.0, 35.0)] * 3
    slower_tail = [both(15.0, 60.0)] * 3  # a few slow API answers: shown, not failed
    verdicts = compare(base, slower_tail)
    assert {(v.scenario, v.metric, v.verdict) for v in verdicts} == {
        (ONE_STEP, "cpu_operator_vs_kube_apiserver", "no change shown"),
        (AT_50, "p50_ms", "no change shown"),
        (AT_50, "p99_ms", "worse"),
    }
    assert failed(verdicts) == []
    slower = [both(20.0, 35.0)] * 3
    assert [(v.scenario, v.metric) for v in failed(compare(base, slower))] == [(AT_50, "p50_ms")]
    # B3's median swung 0.66-1.09 between two runs of the same code: 13 % is no verdict.
    a_bit_slower = [both(17.0, 35.0)] * 3
    assert failed(compare(base, a_bit_slower)) == []


def test_an_unknown_scenario_is_refused_before_anything_runs() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--base", "HEAD", "--scenarios", "B1,B4"])
    assert exc.value.code == 2
