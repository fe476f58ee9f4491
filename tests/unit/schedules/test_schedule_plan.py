"""The schedule pass (`opscore_logic.schedule.plan`): which run a WorkflowSchedule
creates, which runs it deletes, and when it looks again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from opscore_logic.schedule import (
    InvalidSchedule,
    Run,
    SchedulePlan,
    Skip,
    check_expression,
    last_success,
    plan,
    run_name,
)
from opscore_logic.schedule_model import WorkflowScheduleSpec
from opscore_logic.workflow_model import WorkflowPhase

T0 = datetime(2026, 12, 3, 4, 0, 0, tzinfo=UTC)  # a whole minute


def spec(schedule: str = "* * * * *", **fields: Any) -> WorkflowScheduleSpec:
    return WorkflowScheduleSpec.model_validate(
        {"schedule": schedule, "workflow": {"templateRef": {"name": "report"}}, **fields}
    )


def run(minute: int, phase: WorkflowPhase | None = WorkflowPhase.RUNNING) -> Run:
    fired = T0 + timedelta(minutes=minute)
    done = fired + timedelta(seconds=30) if phase is not None and phase.finished else None
    return Run(
        name=run_name("nightly", fired), scheduled_time=fired, phase=phase, completion_time=done
    )


def decide(
    schedule: WorkflowScheduleSpec,
    *,
    now: datetime,
    created: datetime = T0 - timedelta(hours=1),
    last: datetime | None = None,
    runs: list[Run] | None = None,
) -> SchedulePlan:
    return plan(
        schedule, zone=UTC, created=created, last_schedule_time=last, runs=runs or [], now=now
    )


def test_a_due_fire_time_creates_its_run_and_wakes_at_the_next() -> None:
    decided = decide(spec(), now=T0 + timedelta(seconds=2), last=T0 - timedelta(minutes=1))
    assert decided.create_at == T0
    assert decided.last_schedule_time == T0
    assert decided.wake_at == T0 + timedelta(minutes=1)


def test_a_run_is_named_after_its_fire_time_in_unix_seconds() -> None:
    assert run_name("nightly", T0) == f"nightly-{int(T0.timestamp())}"


def test_a_fire_time_equal_to_now_is_due() -> None:
    assert decide(spec(), now=T0, last=T0 - timedelta(minutes=1)).create_at == T0


def test_a_new_schedule_starts_no_run_for_a_fire_time_before_it_existed() -> None:
    decided = decide(spec(), now=T0 + timedelta(seconds=40), created=T0 + timedelta(seconds=10))
    assert decided.create_at is None
    assert decided.wake_at == T0 + timedelta(minutes=1)


def test_after_downtime_only_the_most_recent_missed_fire_time_starts() -> None:
    decided = decide(spec(), now=T0 + timedelta(minutes=10, seconds=5), last=T0)
    assert decided.create_at == T0 + timedelta(minutes=10)


def test_a_missed_fire_time_later_than_the_starting_deadline_starts_nothing() -> None:
    late = spec(startingDeadlineSeconds=30)
    decided = decide(late, now=T0 + timedelta(minutes=10, seconds=45), last=T0)
    assert decided.create_at is None
    assert decided.skipped is Skip.MISSED_DEADLINE
    assert decided.skipped_time == T0 + timedelta(minutes=10)
    assert decided.last_schedule_time == T0
    assert decided.wake_at == T0 + timedelta(minutes=11)


def test_a_missed_fire_time_within_the_starting_deadline_starts() -> None:
    decided = decide(spec(startingDeadlineSeconds=30), now=T0 + timedelta(seconds=20))
    assert decided.create_at == T0


def test_a_run_that_exists_is_not_created_again_when_its_status_write_was_lost() -> None:
    decided = decide(spec(), now=T0 + timedelta(seconds=5), runs=[run(0)])
    assert decided.create_at is None


def test_forbid_skips_a_fire_time_while_a_run_is_active() -> None:
    decided = decide(
        spec(concurrencyPolicy="Forbid"), now=T0 + timedelta(minutes=1), last=T0, runs=[run(0)]
    )
    assert decided.create_at is None
    assert decided.skipped is Skip.FORBIDDEN


def test_forbid_starts_the_pending_fire_time_once_the_run_ended_within_the_deadline() -> None:
    decided = decide(
        spec(concurrencyPolicy="Forbid", startingDeadlineSeconds=30),
        now=T0 + timedelta(minutes=1, seconds=10),
        last=T0,
        runs=[run(0, WorkflowPhase.SUCCEEDED)],
    )
    assert decided.create_at == T0 + timedelta(minutes=1)


def test_allow_starts_a_run_beside_an_active_one() -> None:
    decided = decide(spec(), now=T0 + timedelta(minutes=1), last=T0, runs=[run(0)])
    assert decided.create_at == T0 + timedelta(minutes=1)
    assert decided.delete == ()
    assert [r.name for r in decided.active] == [run(0).name]


def test_replace_deletes_the_active_runs_and_starts_a_new_one() -> None:
    decided = decide(
        spec(concurrencyPolicy="Replace"), now=T0 + timedelta(minutes=1), last=T0, runs=[run(0)]
    )
    assert decided.create_at == T0 + timedelta(minutes=1)
    assert decided.delete == (run(0).name,)
    assert decided.active == ()


def test_a_suspended_schedule_starts_nothing_and_sets_no_wake_up() -> None:
    decided = decide(spec(suspend=True), now=T0 + timedelta(minutes=5), last=T0)
    assert decided.create_at is None
    assert decided.wake_at is None
    assert decided.next_schedule_time is None


def test_finished_runs_beyond_the_history_limits_are_deleted_oldest_first() -> None:
    succeeded = [run(m, WorkflowPhase.SUCCEEDED) for m in range(4)]
    failed = [run(10 + m, WorkflowPhase.FAILED) for m in range(2)] + [
        run(20, WorkflowPhase.CANCELLED)
    ]
    decided = decide(
        spec(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1),
        now=T0 + timedelta(minutes=20, seconds=10),
        last=T0 + timedelta(minutes=20),
        runs=[*succeeded, *failed, run(21)],
    )
    assert decided.delete == (succeeded[0].name, succeeded[1].name, failed[0].name, failed[1].name)


def test_history_limits_of_zero_delete_every_finished_run() -> None:
    runs = [run(0, WorkflowPhase.SUCCEEDED), run(1, WorkflowPhase.FAILED)]
    decided = decide(
        spec(successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0),
        now=T0 + timedelta(minutes=1, seconds=5),
        last=T0 + timedelta(minutes=1),
        runs=runs,
    )
    assert set(decided.delete) == {r.name for r in runs}


def test_the_schedule_is_read_in_its_time_zone() -> None:
    paris = spec("0 9 * * *", timeZone="Europe/Paris")
    decided = plan(
        paris,
        zone=ZoneInfo("Europe/Paris"),
        created=T0 - timedelta(days=2),
        last_schedule_time=None,
        runs=[],
        now=datetime(2026, 12, 3, 8, 0, 30, tzinfo=UTC),
    )
    assert decided.create_at == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 09:00 CET


def test_a_sixth_field_schedules_in_seconds() -> None:
    decided = decide(
        spec("* * * * * */10"), now=T0 + timedelta(seconds=25), created=T0 - timedelta(seconds=1)
    )
    assert decided.create_at == T0 + timedelta(seconds=20)
    assert decided.wake_at == T0 + timedelta(seconds=30)


@pytest.mark.parametrize("expression", ["", "bad", "61 * * * *", "* * * *"])
def test_an_expression_croniter_cannot_read_is_refused_with_its_reason(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="is not a cron expression"):
        check_expression(expression)


@pytest.mark.parametrize("expression", ["@hourly", "0 3 * * 1-5", "*/5 * * * * 30"])
def test_macros_ranges_and_a_seconds_field_are_accepted(expression: str) -> None:
    check_expression(expression)


def test_the_last_success_is_the_succeeded_run_that_finished_last() -> None:
    runs = [run(0, WorkflowPhase.SUCCEEDED), run(1, WorkflowPhase.FAILED), run(2)]
    found = last_success([*runs, run(3, WorkflowPhase.SUCCEEDED)])
    assert found is not None
    assert found.name == run(3).name
    assert last_success(runs[1:]) is None


def test_the_last_schedule_time_is_taken_from_a_run_whose_status_write_was_lost() -> None:
    decided = decide(
        spec(), now=T0 + timedelta(seconds=5), last=T0 - timedelta(minutes=1), runs=[run(0)]
    )
    assert decided.last_schedule_time == T0
