"""The fault suite's verdict: every broken guarantee is one line in `problems`, and a
row that keeps its promises has none."""

from __future__ import annotations

from typing import Any

from opscore_testbed.chaos.report import ALWAYS_ZERO, problems, promise


def clean_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"scenario": "F0", **dict.fromkeys(ALWAYS_ZERO, 0)}
    row.update(fields)
    return row


def test_a_row_that_keeps_every_promise_has_no_problem() -> None:
    row = clean_row(redispatched_steps=0, promises=[promise("redispatched_steps", 0)])
    assert problems([row]) == []


def test_each_always_zero_count_that_is_not_zero_is_a_problem() -> None:
    for key in ALWAYS_ZERO:
        assert problems([clean_row(**{key: 1})]) == [f"F0: {key}=1"]


def test_a_count_over_its_promised_bound_is_a_problem() -> None:
    row = clean_row(redispatched_steps=2, promises=[promise("redispatched_steps", 0)])
    assert problems([row]) == ["F0: redispatched_steps=2, promised <= 0"]


def test_a_ratio_within_its_bound_is_kept() -> None:
    row = clean_row(other_p50_ratio=1.9, promises=[promise("other_p50_ratio", 2.0)])
    assert problems([row]) == []


def test_a_flag_other_than_promised_is_a_problem() -> None:
    row = clean_row(processes_restarted=True, promises=[promise("processes_restarted", False)])
    assert problems([row]) == ["F0: processes_restarted=True, promised False"]


def test_agents_left_not_ready_break_the_promise_of_none() -> None:
    row = clean_row(
        agents_not_ready_after={"w01": "StateActive"},
        promises=[promise("agents_not_ready_after", {})],
    )
    assert problems([row]) == ["F0: agents_not_ready_after={'w01': 'StateActive'}, promised {}"]


def test_a_promise_that_was_not_measured_is_a_problem() -> None:
    row = clean_row(promises=[promise("other_p50_ratio", 2.0)])
    assert problems([row]) == ["F0: other_p50_ratio was promised (2.0) but not measured"]


def test_an_unmeasured_ratio_breaks_its_promise() -> None:
    row = clean_row(other_p50_ratio=None, promises=[promise("other_p50_ratio", 2.0)])
    assert problems([row]) == ["F0: other_p50_ratio=None, promised 2.0"]


def test_a_scenario_that_crashed_is_a_problem() -> None:
    assert problems([{"scenario": "F9", "problems": ["RuntimeError: boom"]}]) == [
        "F9: RuntimeError: boom"
    ]


def test_evidence_names_what_a_count_counted_without_adding_problems() -> None:
    row = clean_row(lost=1, evidence={"lost": ["f1-0003"]})
    assert problems([row]) == ["F0: lost=1"]


def test_a_count_under_its_promised_minimum_is_a_problem() -> None:
    row = clean_row(
        undelivered_attempts=0, promises=[promise("undelivered_attempts", 1, at_least=True)]
    )
    assert problems([row]) == ["F0: undelivered_attempts=0, promised >= 1"]
    row["undelivered_attempts"] = 3
    assert problems([row]) == []


def test_duplicates_the_scenario_predicted_are_allowed() -> None:
    row = clean_row(duplicated=2, duplicated_predicted=2)
    assert problems([row]) == []


def test_a_duplicate_beyond_the_predicted_ones_is_a_problem() -> None:
    row = clean_row(duplicated=3, duplicated_predicted=2)
    assert problems([row]) == ["F0: duplicated=3, of which predicted 2"]
