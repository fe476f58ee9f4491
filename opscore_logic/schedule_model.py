"""The WorkflowSchedule resource: Workflows created on a cron schedule, as a CronJob
creates Jobs.

Spec is the schedule and the Workflow each run is (`spec.workflow`, a Workflow's spec:
a `templateRef` with `inputs`, or inline `steps`). Status is what the operator last did:
when it last created a run, which runs are active, the last successful one. The runs
themselves are Workflows owned by the schedule, so the garbage collector deletes them
with it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from opscore_logic.base import WireModel
from opscore_logic.conditions import Condition
from opscore_logic.workflow_model import (
    LIST_MAP_BY_NAME,
    LIST_MAP_BY_TYPE,
    MAX_STEPS,
    Step,
    WorkflowSpec,
)

# An IANA name's shape (`Europe/Paris`, `UTC`, `America/Argentina/Buenos_Aires`,
# `Etc/GMT+5`); whether the zone exists is checked by the operator against the time zone
# database (condition `Scheduled`, reason `InvalidTimeZone`).
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"


class ConcurrencyPolicy(StrEnum):
    """What a fire time does while an earlier run of the schedule is still active."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class ScheduledWorkflowSpec(WorkflowSpec):
    """A Workflow's spec, as each run gets it. Unlike a Workflow's own, its steps may be
    edited: a change applies to the runs created after it."""

    steps: list[Step] | None = Field(
        default=None,
        max_length=MAX_STEPS,
        description="The steps of each run. Exactly one of `steps` and `templateRef` is set.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )


class WorkflowScheduleSpec(WireModel):
    """When to create runs, what each run is, and what to do when they overlap."""

    schedule: str = Field(
        min_length=1,
        max_length=256,
        description=(
            "Cron expression: minute hour day-of-month month day-of-week (`0 3 * * 1-5`), "
            "macros such as `@hourly` too. A sixth field is seconds (`* * * * * */10`): "
            "meant for tests, not for production load."
        ),
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        description="IANA time zone the schedule is read in (default `UTC`).",
    )
    workflow: ScheduledWorkflowSpec = Field(
        description="The spec of each run: a Workflow's (`templateRef` + `inputs`, or `steps`)."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.ALLOW,
        description=(
            "While a run is active, a fire time `Allow`s another run, is skipped (`Forbid`), "
            "or deletes the active runs and starts a new one (`Replace`)."
        ),
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description=(
            "A fire time missed by more than this (operator down, Forbid waiting) is "
            "skipped. Unset: the most recent missed fire time starts however late."
        ),
    )
    successful_runs_history_limit: int = Field(
        default=3, ge=0, le=1000, description="Succeeded runs kept; older ones are deleted."
    )
    failed_runs_history_limit: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Failed or Cancelled runs kept; older ones are deleted.",
    )
    suspend: bool = Field(default=False, description="No new runs while true.")


class RunReference(WireModel):
    """A run of the schedule, by name."""

    name: str = Field(description="The Workflow's name.")
    scheduled_time: datetime | None = Field(
        default=None, description="The fire time it was created for."
    )


class WorkflowScheduleStatus(WireModel):
    """What the operator last did for the schedule."""

    last_schedule_time: datetime | None = Field(
        default=None, description="The fire time of the last run created."
    )
    next_schedule_time: datetime | None = Field(
        default=None, description="The next fire time (none while suspended or invalid)."
    )
    active: list[RunReference] = Field(
        default_factory=list,
        description="Runs not finished yet.",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    last_successful_time: datetime | None = Field(
        default=None, description="When the last successful run finished."
    )
    last_successful_run: str | None = Field(
        default=None, description="The name of the last successful run."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "`Scheduled`: True while runs are created on time; False with reason "
            "`Suspended`, `InvalidSchedule` or `InvalidTimeZone`."
        ),
        json_schema_extra=LIST_MAP_BY_TYPE,
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation this status was computed from."
    )
