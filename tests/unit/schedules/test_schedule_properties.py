"""Properties of the schedule pass over random schedules, policies and operator
up-times (hypothesis): a fire time is never run twice, no run starts for a fire time
that has not come or is past the starting deadline, only the most recent missed fire
time ever starts, Forbid never overlaps runs, and a pass repeated from what it wrote
creates nothing (restart safety)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from opscore_logic.schedule import Run, plan, run_name
from opscore_logic.schedule_model import WorkflowScheduleSpec
from opscore_logic.workflow_model import WorkflowPhase

T0 = datetime(2026, 12, 3, 4, 0, 0, tzinfo=UTC)
PERIODS = (2, 3, 5, 10, 15, 30)  # seconds: `* * * * * */N` fires on multiples of N


@dataclass
class World:
    """The API server's side: the runs that exist and the status last written."""

    spec: WorkflowScheduleSpec
    period: int
    created: datetime
    runs: dict[str, Run] = field(default_factory=dict)
    last: datetime | None = None
    fired: list[tuple[datetime, datetime]] = field(default_factory=list)  # (fire, created at)

    def active(self) -> list[Run]:
        return [r for r in self.runs.values() if not r.finished]

    def pass_at(self, now: datetime) -> None:
        decided = plan(
            self.spec,
            zone=UTC,
            created=self.created,
            last_schedule_time=self.last,
            runs=list(self.runs.values()),
            now=now,
        )
        for name in decided.delete:
            self.runs.pop(name, None)
        if decided.create_at is not None:
            name = run_name("s", decided.create_at)
            assert name not in self.runs, "a fire time was run twice"
            self.runs[name] = Run(name, decided.create_at, WorkflowPhase.RUNNING)
            self.fired.append((decided.create_at, now))
        self.last = decided.last_schedule_time

    def finish_oldest(self, phase: WorkflowPhase, now: datetime) -> None:
        active = sorted(self.active(), key=lambda r: r.scheduled_time or T0)
        if active:
            run = active[0]
            self.runs[run.name] = Run(run.name, run.scheduled_time, phase, now)


steps = st.lists(
    st.tuples(
        st.floats(min_value=0.1, max_value=90.0),  # seconds until the next pass
        st.sampled_from([None, WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    period=st.sampled_from(PERIODS),
    policy=st.sampled_from(["Allow", "Forbid", "Replace"]),
    deadline=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
    start=st.floats(min_value=0, max_value=59),
    passes=steps,
)
def test_every_run_is_one_fire_time_on_time_and_never_twice(
    period: int,
    policy: str,
    deadline: int | None,
    start: float,
    passes: list[tuple[float, WorkflowPhase | None]],
) -> None:
    spec = WorkflowScheduleSpec.model_validate(
        {
            "schedule": f"* * * * * */{period}",
            "workflow": {"templateRef": {"name": "t"}},
            "concurrencyPolicy": policy,
            "startingDeadlineSeconds": deadline,
            "successfulRunsHistoryLimit": 2,
            "failedRunsHistoryLimit": 1,
        }
    )
    world = World(spec, period, created=T0 + timedelta(seconds=start))
    now = world.created
    for wait, ends in passes:
        now += timedelta(seconds=wait)
        if ends is not None:
            world.finish_oldest(ends, now)
        active_before = len(world.active())
        last_before = world.last
        count = len(world.fired)
        world.pass_at(now)
        if len(world.fired) == count:
            continue
        fire, _ = world.fired[-1]
        assert fire <= now
        assert fire > world.created
        assert int(fire.timestamp()) % period == 0
        # Only the most recent fire time starts: none later than it has come.
        assert now - fire < timedelta(seconds=period)
        if deadline is not None:
            assert (now - fire).total_seconds() <= deadline
        if policy == "Forbid":
            assert active_before == 0
        if policy == "Replace":
            assert len(world.active()) == 1
        # A restart deciding again creates nothing, even if the status write that
        # recorded the run was lost (the run itself says which fire time it is).
        world.last = last_before
        world.pass_at(now)
        assert len(world.fired) == count + 1
    fires = [f for f, _ in world.fired]
    assert fires == sorted(set(fires))
