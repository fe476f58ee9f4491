"""WorkflowSchedules: read the cache, decide with `opscore_logic.schedule`, create and
delete the runs, write the status, and wake again at the next fire time.

A run is a Workflow owned by its schedule (`ownerReferences`, controller), so the
garbage collector deletes the runs with the schedule; it is named from its fire time and
created with create-if-absent semantics: the API server's 409 AlreadyExists means the
run is there, whoever created it (this replica before a restart, or another). So a
restart or a second replica can never start one fire time twice.

Only the process that may act runs the workers (the runtime's leader gating), and every
create and delete is checked against `may_act` right before it goes out. The status
write is fenced by the resourceVersion the decision was made from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from opscore_kube import WORKFLOW_SCHEDULES, WORKFLOWS, Conflict, KubeClient, NotFound
from opscore_logic.base import parse_time
from opscore_logic.conditions import ConditionStatus, set_condition
from opscore_logic.schedule import (
    MAX_SCHEDULE_NAME,
    InvalidSchedule,
    Run,
    SchedulePlan,
    check_expression,
    last_success,
    plan,
    run_name,
)
from opscore_logic.schedule_model import (
    RunReference,
    WorkflowScheduleSpec,
    WorkflowScheduleStatus,
)
from opscore_logic.workflow_model import WorkflowPhase
from opscore_operator.events import EventRecorder
from opscore_operator.status_patch import fenced_status_patch
from opscore_operator.store import Key, ObjectCache
from opscore_operator.workqueue import WorkQueue

logger = logging.getLogger("opscore.schedules")

SCHEDULED_TIME_ANNOTATION = "opscore.opspawn.io/scheduled-time"
SCHEDULED = "Scheduled"
# Wake a little after the fire time: the loop's monotonic clock and the wall clock drift
# apart by milliseconds, and a pass that runs just before the fire time finds nothing due.
WAKE_MARGIN_SECONDS = 0.05
RETRY_SECONDS = 1.0

Body = dict[str, Any]


class ScheduleReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        schedules: ObjectCache,
        workflows: ObjectCache,
        queue: WorkQueue[Key],
        recorder: EventRecorder,
        may_act: Callable[[], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.schedules = schedules
        self.workflows = workflows
        self.queue = queue
        self.recorder = recorder
        self.may_act = may_act
        self.clock = clock
        self._warned: dict[Key, datetime] = {}

    async def worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "schedule %s/%s: pass failed (%s); retrying",
                    *key,
                    exc,
                    extra={"namespace": key[0], "schedule": key[1]},
                )
                self.queue.add_after(key, RETRY_SECONDS)
            finally:
                self.queue.done(key)

    async def reconcile(self, key: Key) -> None:
        body = self.schedules.get(key)
        if body is None:
            self._warned.pop(key, None)
            return
        old_status: Body = dict(body.get("status") or {})
        try:
            status = WorkflowScheduleStatus.model_validate(old_status)
        except ValidationError:
            status = WorkflowScheduleStatus()  # rewritten from the runs below
        now = self.clock()
        generation = body["metadata"].get("generation")
        try:
            spec, zone = _read_spec(key, body)
        except _Unschedulable as bad:
            status.conditions = set_condition(
                status.conditions,
                type=SCHEDULED,
                status="False",
                reason=bad.reason,
                message=str(bad),
                now=now,
                generation=generation,
            )
            status.next_schedule_time = None
            status.observed_generation = generation
            await self._write_status(key, body, old_status, status)
            return
        runs = self.runs_of(body)
        decided = plan(
            spec,
            zone=zone,
            created=parse_time(body["metadata"].get("creationTimestamp")) or now,
            last_schedule_time=status.last_schedule_time,
            runs=runs,
            now=now,
        )
        if not self.may_act():
            self.queue.add_after(key, RETRY_SECONDS)  # leadership is in doubt: nothing goes out
            return
        await self._delete_runs(key, decided.delete)
        created = await self._create_run(key, body, spec, decided)
        self._report_skip(key, body, decided)
        status = _new_status(status, spec, decided, runs, created, now=now, generation=generation)
        await self._write_status(key, body, old_status, status)
        if decided.wake_at is not None:
            delay = (decided.wake_at - self.clock()).total_seconds() + WAKE_MARGIN_SECONDS
            self.queue.add_after(key, delay)

    def runs_of(self, schedule: Body) -> list[Run]:
        """The Workflows in the schedule's namespace whose controller is this schedule
        (by uid: a schedule deleted and created again under the same name does not adopt
        the old one's runs)."""
        uid = schedule["metadata"].get("uid")
        namespace = schedule["metadata"].get("namespace", "")
        runs: list[Run] = []
        for workflow in self.workflows.in_namespace(namespace):
            meta = workflow.get("metadata") or {}
            owners = meta.get("ownerReferences") or []
            if not any(o.get("uid") == uid and o.get("controller") for o in owners):
                continue
            status = workflow.get("status") or {}
            try:
                phase = WorkflowPhase(status.get("phase") or WorkflowPhase.PENDING)
            except ValueError:
                phase = WorkflowPhase.PENDING
            annotations = meta.get("annotations") or {}
            runs.append(
                Run(
                    name=str(meta.get("name")),
                    scheduled_time=parse_time(annotations.get(SCHEDULED_TIME_ANNOTATION)),
                    phase=phase,
                    completion_time=parse_time(status.get("completionTime")),
                )
            )
        return runs

    async def _delete_runs(self, key: Key, names: tuple[str, ...]) -> None:
        for name in names:
            if not self.may_act():
                return
            with contextlib.suppress(NotFound):  # already gone: what we wanted
                await self.kube.delete(WORKFLOWS, key[0], name)
            logger.info("schedule %s/%s: deleted run %s", *key, name)

    async def _create_run(
        self, key: Key, body: Body, spec: WorkflowScheduleSpec, decided: SchedulePlan
    ) -> str | None:
        """Create the run `decided` asks for; its name, or None when there is none. A 409
        AlreadyExists is success: the run of that fire time exists, whoever made it."""
        if decided.create_at is None or not self.may_act():
            return None
        name = run_name(key[1], decided.create_at)
        manifest = run_manifest(body, spec, name=name, fire_time=decided.create_at)
        try:
            await self.kube.create(WORKFLOWS, key[0], manifest)
        except Conflict:
            logger.info("schedule %s/%s: run %s already exists", *key, name)
            return name
        logger.info("schedule %s/%s: created run %s", *key, name)
        self.recorder.record(
            body,
            type="Normal",
            reason="RunCreated",
            message=f"created Workflow {name} for {decided.create_at.isoformat()}",
            progress=True,
        )
        return name

    def _report_skip(self, key: Key, body: Body, decided: SchedulePlan) -> None:
        """One Event per skipped fire time (a pass repeats its decision until the next
        fire time; the Event does not)."""
        if decided.skipped is None or decided.skipped_time is None:
            return
        if self._warned.get(key) == decided.skipped_time:
            return
        self._warned[key] = decided.skipped_time
        late = decided.skipped.value == "MissedStartingDeadline"
        self.recorder.record(
            body,
            type="Warning" if late else "Normal",
            reason=decided.skipped.value,
            message=(
                f"no run for {decided.skipped_time.isoformat()}: "
                + ("later than startingDeadlineSeconds" if late else "a run is still active")
            ),
            progress=not late,
        )

    async def _write_status(
        self, key: Key, body: Body, old: Body, status: WorkflowScheduleStatus
    ) -> None:
        new = status.wire()
        if new == old:
            return
        try:
            answer = await self.kube.patch(
                WORKFLOW_SCHEDULES,
                key[0],
                key[1],
                fenced_status_patch(body, old, new),
                status=True,
            )
        except Conflict:
            self.queue.add(key)  # changed since we read it: decide again from the new copy
            return
        except NotFound:
            return  # deleted meanwhile: its runs go with it
        self.schedules.upsert(answer)


class _Unschedulable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _read_spec(key: Key, body: Body) -> tuple[WorkflowScheduleSpec, tzinfo]:
    """The spec and its time zone, or `_Unschedulable` saying what is wrong with them."""
    try:
        spec = WorkflowScheduleSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise _Unschedulable("InvalidSpec", f"spec is not valid: {exc}") from exc
    if len(key[1]) > MAX_SCHEDULE_NAME:
        raise _Unschedulable(
            "InvalidSpec",
            f"the name is longer than {MAX_SCHEDULE_NAME} characters: run names would not fit",
        )
    try:
        check_expression(spec.schedule)
    except InvalidSchedule as exc:
        raise _Unschedulable("InvalidSchedule", str(exc)) from exc
    zone_name = spec.time_zone or "UTC"
    try:
        return spec, ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _Unschedulable(
            "InvalidTimeZone", f"timeZone {zone_name!r} is not in the time zone database"
        ) from exc


def run_manifest(
    schedule: Body, spec: WorkflowScheduleSpec, *, name: str, fire_time: datetime
) -> Body:
    """The Workflow of one fire time: the schedule's `spec.workflow`, owned by the schedule
    (controller, blocking its deletion until the run is gone in foreground deletion)."""
    meta = schedule["metadata"]
    return {
        "apiVersion": WORKFLOWS.api_version,
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "annotations": {SCHEDULED_TIME_ANNOTATION: fire_time.isoformat()},
            "ownerReferences": [
                {
                    "apiVersion": WORKFLOW_SCHEDULES.api_version,
                    "kind": "WorkflowSchedule",
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec.workflow.wire(),
    }


def _new_status(
    status: WorkflowScheduleStatus,
    spec: WorkflowScheduleSpec,
    decided: SchedulePlan,
    runs: list[Run],
    created: str | None,
    *,
    now: datetime,
    generation: int | None,
) -> WorkflowScheduleStatus:
    deleted = set(decided.delete)
    active = [
        RunReference(name=r.name, scheduled_time=r.scheduled_time)
        for r in decided.active
        if r.name not in deleted
    ]
    if created is not None and all(r.name != created for r in active):
        active.append(RunReference(name=created, scheduled_time=decided.create_at))
    success = last_success(runs)
    if success is not None and (
        status.last_successful_time is None
        or (success.completion_time or now) >= status.last_successful_time
    ):
        status.last_successful_run = success.name
        status.last_successful_time = success.completion_time or now
    condition: tuple[ConditionStatus, str, str]
    if spec.suspend:
        condition = ("False", "Suspended", "spec.suspend is true: no new runs")
    else:
        condition = ("True", "Scheduling", f"runs are created on {spec.schedule!r}")
    status.conditions = set_condition(
        status.conditions,
        type=SCHEDULED,
        status=condition[0],
        reason=condition[1],
        message=condition[2],
        now=now,
        generation=generation,
    )
    status.last_schedule_time = decided.last_schedule_time
    status.next_schedule_time = decided.next_schedule_time
    status.active = active
    status.observed_generation = generation
    return status
