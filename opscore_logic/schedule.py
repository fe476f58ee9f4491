"""When a WorkflowSchedule creates a run, which runs it deletes, and when to look again.

One pure pass, like the engine's: the operator hands it the schedule, its runs as the
cache holds them, the time zone it resolved and the time; it returns a `SchedulePlan`
and does nothing itself. The rules are CronJob's:

- Of the fire times since the last run, only the most recent counts: after downtime at
  most one missed run starts, and none when it is later than `startingDeadlineSeconds`.
- A run's name is the schedule's plus the fire time in Unix seconds, so whoever creates
  it (a restarted operator, a second replica) creates the same object: the API server's
  409 AlreadyExists is the guard against a duplicate.
- `Forbid` leaves the fire time pending while a run is active (it starts when the run
  ends, if still within the starting deadline); `Replace` deletes the active runs first.
- Finished runs beyond the history limits are deleted, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from opscore_logic.schedule_model import ConcurrencyPolicy, WorkflowScheduleSpec
from opscore_logic.workflow_model import WorkflowPhase

# A Workflow name is at most 253 characters; the suffix is `-` and 10 digits.
MAX_SCHEDULE_NAME = 253 - 11


class Skip(StrEnum):
    """Why a due fire time created no run."""

    FORBIDDEN = "ConcurrencyForbidden"
    MISSED_DEADLINE = "MissedStartingDeadline"


class InvalidSchedule(ValueError):
    """The cron expression cannot be read; the message says why (for the status)."""


@dataclass(frozen=True, slots=True)
class Run:
    """A Workflow the schedule owns, as the cache holds it."""

    name: str
    scheduled_time: datetime | None
    phase: WorkflowPhase | None
    completion_time: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.phase is not None and self.phase.finished


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """What one pass decided. The caller creates `create_at`'s run (if any), deletes
    `delete`, writes the status and wakes the schedule again at `wake_at`."""

    create_at: datetime | None = None
    delete: tuple[str, ...] = ()
    skipped: Skip | None = None
    skipped_time: datetime | None = None
    # The fire time the status records as the last one acted on.
    last_schedule_time: datetime | None = None
    next_schedule_time: datetime | None = None
    wake_at: datetime | None = None
    active: tuple[Run, ...] = field(default=())


def run_name(schedule: str, fire_time: datetime) -> str:
    """The run of `schedule` at `fire_time`: the same name whoever computes it."""
    return f"{schedule}-{int(fire_time.timestamp())}"


def check_expression(expression: str) -> None:
    """Raise `InvalidSchedule` unless croniter reads `expression` (5 fields, 6 with
    seconds, or a macro such as `@hourly`)."""
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise InvalidSchedule(f"schedule {expression!r} is not a cron expression: {exc}") from exc


def latest_fire_time(expression: str, zone: tzinfo, now: datetime) -> datetime | None:
    """The most recent fire time at or before `now` (in UTC), or None if there is none.

    croniter's `get_prev` is strictly before its start, and it works in whole seconds:
    it starts one second after `now` rounded down, so a fire time equal to `now` counts
    and none after `now` can."""
    start = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
    try:
        found: datetime = croniter(expression, start).get_prev(datetime)
    except CroniterBadDateError:
        return None
    return found.astimezone(UTC).replace(fold=0)


def next_fire_time(expression: str, zone: tzinfo, now: datetime) -> datetime | None:
    """The first fire time strictly after `now` (in UTC), or None if there is none."""
    try:
        found: datetime = croniter(expression, now.astimezone(zone)).get_next(datetime)
    except CroniterBadDateError:
        return None
    return found.astimezone(UTC).replace(fold=0)


def plan(
    spec: WorkflowScheduleSpec,
    *,
    zone: tzinfo,
    created: datetime,
    last_schedule_time: datetime | None,
    runs: list[Run],
    now: datetime,
) -> SchedulePlan:
    """Decide one pass for a schedule whose expression passed `check_expression`.

    `created` is the schedule's creation time: fire times before it never count (a new
    schedule does not start a run for the minute before it existed). The runs' own
    scheduled times count as acted on too, so a run whose status write was lost is not
    created a second time even if it were already deleted."""
    active = tuple(sorted((r for r in runs if not r.finished), key=_order))
    delete = list(_beyond_history(spec, runs))
    acted = [t for t in (last_schedule_time, *(r.scheduled_time for r in runs)) if t is not None]
    since = max([created, *acted])
    following = next_fire_time(spec.schedule, zone, now)
    base = SchedulePlan(
        delete=tuple(delete),
        last_schedule_time=max(acted) if acted else None,
        active=active,
    )
    if spec.suspend:
        return base
    base = replace(base, next_schedule_time=following, wake_at=following)
    due = latest_fire_time(spec.schedule, zone, now)
    if due is None or due <= since:
        return base
    deadline = spec.starting_deadline_seconds
    if deadline is not None and (now - due).total_seconds() > deadline:
        return replace(base, skipped=Skip.MISSED_DEADLINE, skipped_time=due)
    if active and spec.concurrency_policy is ConcurrencyPolicy.FORBID:
        return replace(base, skipped=Skip.FORBIDDEN, skipped_time=due)
    if active and spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
        delete += [r.name for r in active if r.name not in delete]
        active = ()
    return SchedulePlan(
        create_at=due,
        delete=tuple(delete),
        last_schedule_time=due,
        next_schedule_time=following,
        wake_at=following,
        active=active,
    )


def _order(run: Run) -> tuple[datetime, str]:
    return (run.scheduled_time or datetime.min.replace(tzinfo=UTC), run.name)


def _beyond_history(spec: WorkflowScheduleSpec, runs: list[Run]) -> list[str]:
    """Finished runs past the history limits, oldest first: Succeeded ones beyond
    `successfulRunsHistoryLimit`, Failed and Cancelled ones beyond
    `failedRunsHistoryLimit`."""
    succeeded = sorted((r for r in runs if r.phase is WorkflowPhase.SUCCEEDED), key=_order)
    failed = sorted(
        (r for r in runs if r.finished and r.phase is not WorkflowPhase.SUCCEEDED), key=_order
    )
    out: list[str] = []
    for finished, limit in (
        (succeeded, spec.successful_runs_history_limit),
        (failed, spec.failed_runs_history_limit),
    ):
        out += [r.name for r in finished[: max(len(finished) - limit, 0)]]
    return out


def last_success(runs: list[Run]) -> Run | None:
    """The succeeded run that finished last (by completion, then fire time)."""
    succeeded = [r for r in runs if r.phase is WorkflowPhase.SUCCEEDED]
    if not succeeded:
        return None
    return max(
        succeeded,
        key=lambda r: (r.completion_time or datetime.min.replace(tzinfo=UTC), *_order(r)),
    )
