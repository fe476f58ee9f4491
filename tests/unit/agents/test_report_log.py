"""`merge_reports` keeps a bounded, ordered, idempotent log that never loses what matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opscore_logic.agent_model import MAX_REPORTS, AgentReport
from opscore_logic.report_log import is_significant, merge_reports

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def report(state: str, second: float, **details: Any) -> AgentReport:
    at = T0 + timedelta(seconds=second)
    return AgentReport(state=state, timestamp=at, received_at=at, details=details)


def states(reports: list[AgentReport]) -> list[str]:
    return [r.state for r in reports]


def test_result_is_ordered_by_timestamp() -> None:
    merged = merge_reports([report("idle", 2)], [report("active", 1), report("idle", 3)])
    assert states(merged) == ["active", "idle", "idle"]


def test_equal_timestamps_are_ordered_by_received_at() -> None:
    first = AgentReport(state="active", timestamp=T0, received_at=T0 + timedelta(seconds=2))
    second = AgentReport(state="idle", timestamp=T0, received_at=T0 + timedelta(seconds=1))
    assert states(merge_reports([], [first, second])) == ["idle", "active"]


def test_full_ties_are_ordered_independently_of_input_order() -> None:
    tied = [report("idle", 0, output={"x": 1}), report("idle", 0), report("IDLE", 0)]
    assert merge_reports([], tied) == merge_reports([], tied[::-1])


def test_exact_duplicate_is_kept_once() -> None:
    stored = [report("idle", 1, note="x")]
    again = AgentReport(
        state="idle",
        timestamp=stored[0].timestamp,
        received_at=T0 + timedelta(minutes=5),
        details={"note": "x"},
    )
    assert merge_reports(stored, [again]) == stored


def test_merging_twice_changes_nothing() -> None:
    new = [report("active", 1), report("idle", 2)]
    once = merge_reports([], new)
    assert merge_reports(once, new) == once


def test_duplicate_read_back_with_integral_float_as_int_is_kept_once() -> None:
    stored = [report("error", 1, code=1)]  # the API server writes 1.0 back as 1
    assert merge_reports(stored, [report("error", 1, code=1.0)]) == stored


def test_same_timestamp_different_details_are_both_kept() -> None:
    merged = merge_reports([report("idle", 1, a=1)], [report("idle", 1, a=2)])
    assert len(merged) == 2


def test_repeated_heartbeats_are_coalesced_before_other_reports() -> None:
    existing = [report("active", 0), report("idle", 1), report("idle", 2), report("idle", 3)]
    merged = merge_reports(existing, [report("active", 4)], limit=3)
    assert states(merged) == ["active", "idle", "active"]
    assert merged[1].timestamp == T0 + timedelta(seconds=3)


def test_coalescing_compares_normalised_states() -> None:
    existing = [report("IDLE", 0), report("idle", 1), report("active", 2)]
    merged = merge_reports(existing, [], limit=2)
    assert states(merged) == ["idle", "active"]


def test_oldest_ordinary_report_goes_when_nothing_repeats() -> None:
    existing = [report("active", 0), report("idle", 1), report("active", 2)]
    assert states(merge_reports(existing, [], limit=2)) == ["idle", "active"]


def test_error_report_survives_a_burst_of_heartbeats() -> None:
    error = report("error", 0, error_code="E1", message="boom")
    burst = [report("idle" if i % 2 else "active", 1 + i) for i in range(50)]
    merged = merge_reports([error], burst)
    assert error in merged


def test_report_with_task_id_survives_a_burst_of_heartbeats() -> None:
    done = report("idle", 0, opscore_task_id="t-1", output={"ok": True})
    merged = merge_reports([done], [report("idle", 1 + i) for i in range(40)])
    assert done in merged


def test_oldest_significant_report_goes_when_only_significant_ones_remain() -> None:
    errors = [report("error", i, message=str(i)) for i in range(3)]
    merged = merge_reports(errors, [report("idle", 9)], limit=2)
    assert [r.details.get("message") for r in merged] == ["2", None]


def test_significant_reports_are_errors_task_ids_and_outputs() -> None:
    assert is_significant(report("FAILED", 0))
    assert is_significant(report("idle", 0, opscore_task_id="t"))
    assert is_significant(report("idle", 0, output={}))
    assert not is_significant(report("idle", 0, note="x"))


def test_limit_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="limit"):
        merge_reports([], [report("idle", 0)], limit=0)


def test_naive_timestamps_are_treated_as_utc() -> None:
    naive = AgentReport(state="idle", timestamp=datetime(2026, 11, 25, 8, 0, 1), received_at=T0)
    merged = merge_reports([report("active", 0)], [naive])
    assert states(merged) == ["active", "idle"]


STATE = st.sampled_from(["idle", "IDLE", "active", "busy", "error", "initializing", "odd"])
DETAILS = st.sampled_from([{}, {}, {}, {"opscore_task_id": "t"}, {"output": {"x": 1}}, {"n": 1}])
REPORTS = st.lists(
    st.builds(
        lambda state, second, details: report(state, second, **details),
        STATE,
        st.integers(min_value=0, max_value=500),
        DETAILS,
    ),
    max_size=60,
)
LIMITS = st.integers(min_value=1, max_value=MAX_REPORTS)


@given(REPORTS, REPORTS, LIMITS)
def test_never_exceeds_limit(
    existing: list[AgentReport], new: list[AgentReport], limit: int
) -> None:
    assert len(merge_reports(existing, new, limit=limit)) <= limit


@given(REPORTS, REPORTS, LIMITS)
def test_newest_report_is_always_kept(
    existing: list[AgentReport], new: list[AgentReport], limit: int
) -> None:
    everything = existing + new
    if everything:
        newest_key = max((r.timestamp, r.received_at) for r in everything)
        newest = [r for r in everything if (r.timestamp, r.received_at) == newest_key]
        merged = merge_reports(existing, new, limit=limit)
        assert merged[-1] in newest


@given(REPORTS, REPORTS, LIMITS)
def test_result_is_sorted(existing: list[AgentReport], new: list[AgentReport], limit: int) -> None:
    merged = merge_reports(existing, new, limit=limit)
    keys = [(r.timestamp, r.received_at) for r in merged]
    assert keys == sorted(keys)


@given(REPORTS, REPORTS)
def test_merge_is_idempotent(existing: list[AgentReport], new: list[AgentReport]) -> None:
    once = merge_reports(existing, new)
    assert merge_reports(once, new) == once


@given(REPORTS, REPORTS, LIMITS)
def test_nothing_is_invented(
    existing: list[AgentReport], new: list[AgentReport], limit: int
) -> None:
    merged = merge_reports(existing, new, limit=limit)
    assert all(r in existing or r in new for r in merged)


@given(
    st.integers(min_value=1, max_value=MAX_REPORTS - 1),
    st.lists(st.sampled_from(["idle", "active", "IDLE"]), min_size=1, max_size=200),
)
def test_errors_survive_bursts_of_heartbeats(error_count: int, burst: list[str]) -> None:
    errors = [report("error", i, error_code=f"E{i}") for i in range(error_count)]
    heartbeats = [report(state, 100 + i) for i, state in enumerate(burst)]
    merged = merge_reports(errors, heartbeats)
    assert all(error in merged for error in errors)


@given(st.lists(st.sampled_from(["idle", "active"]), min_size=MAX_REPORTS, max_size=200))
def test_latest_state_change_survives_heartbeats(burst: list[str]) -> None:
    merged = merge_reports([], [report(state, i) for i, state in enumerate(burst)])
    assert merged[-1].state == burst[-1]
    assert len(merged) == MAX_REPORTS
