"""WorkflowSchedules on the real control plane: runs created on time by a seconds-level
schedule, Forbid never overlapping runs, no duplicate after an operator crash, the
missed-run rule across operator downtime, and the garbage collector deleting the runs
with their schedule.

The schedules use croniter's sixth field (seconds) so a test sees several fire times in
seconds; production schedules are minute-level, the code path is the same.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_support import FINISHED, agents_ready, apply, options_from, when

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

API_VERSION = "opscore.opspawn.io/v1alpha1"
SCHEDULED_TIME = "opscore.opspawn.io/scheduled-time"
AGENTS = ("alpha:work", "beta:work")
# A run on a crowded 2-core machine may be created a few seconds after its fire time.
ON_TIME_SECONDS = 4.0

Body = dict[str, Any]


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    return options_from(request, StackOptions(agents=AGENTS, task_seconds=0.5))


def schedule(name: str, expression: str, **spec: Any) -> Body:
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowSchedule",
        "metadata": {"name": name},
        "spec": {
            "schedule": expression,
            "workflow": {"steps": [{"name": "work", "capabilities": ["work"]}]},
            **spec,
        },
    }


def runs_of(stack: OpsCoreStack, name: str) -> list[Body]:
    """The schedule's runs (its controller ownerReference), oldest fire time first."""
    runs = [
        wf
        for wf in kv.items(stack.cp, "workflows", stack.namespace)
        if any(
            o.get("kind") == "WorkflowSchedule" and o.get("name") == name
            for o in wf["metadata"].get("ownerReferences") or []
        )
    ]
    return sorted(runs, key=fire_time)


def fire_time(run: Body) -> datetime:
    return when(run["metadata"]["annotations"][SCHEDULED_TIME])


def get_schedule(stack: OpsCoreStack, name: str) -> Body:
    result: Body = kv.get(stack.cp, "workflowschedule", stack.namespace, name)
    return result


def wait_runs(stack: OpsCoreStack, name: str, count: int, *, timeout: float = 60) -> list[Body]:
    found: list[Body] = []

    def enough() -> bool:
        found[:] = runs_of(stack, name)
        return len(found) >= count

    wait_until(enough, timeout=timeout, interval=0.2, what=f"{count} runs of {name}")
    return found


def wait_clock(moment: datetime) -> None:
    """Until the wall clock has passed `moment` (fire times are wall-clock times)."""
    remaining = (moment - datetime.now(UTC)).total_seconds()
    wait_until(
        lambda: datetime.now(UTC) > moment,
        timeout=max(remaining, 0) + 5,
        interval=0.1,
        what=f"the clock to pass {moment.isoformat()}",
    )


def events(stack: OpsCoreStack, name: str) -> list[Body]:
    return [
        e
        for e in kv.items(stack.cp, "events", stack.namespace)
        if e.get("involvedObject", {}).get("name") == name
    ]


def test_a_schedule_lists_with_its_columns_in_kubectl_get(
    crds: ControlPlane, namespace: str
) -> None:
    crds.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(schedule("nightly", "0 3 * * *", timeZone="Europe/Paris")),
    )
    table = crds.kubectl("get", "workflowschedules", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "SCHEDULE",
        "TIME-ZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST-SCHEDULE",
        "AGE",
    ]
    assert row.split()[:5] == ["nightly", "0", "3", "*", "*"]
    assert "Europe/Paris" in row


def test_a_seconds_schedule_creates_its_runs_on_time_named_from_their_fire_times(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("alpha", "beta"))
    apply(stack, schedule("tick", "* * * * * */4"))
    runs = wait_runs(stack, "tick", 3)
    fires = [fire_time(r) for r in runs]
    for run, fired in zip(runs, fires, strict=True):
        assert run["metadata"]["name"] == f"tick-{int(fired.timestamp())}"
        assert int(fired.timestamp()) % 4 == 0
        created = when(run["metadata"]["creationTimestamp"])
        assert timedelta(seconds=-1) <= created - fired <= timedelta(seconds=ON_TIME_SECONDS)
    assert [b - a for a, b in itertools.pairwise(fires)] == [timedelta(seconds=4)] * (
        len(fires) - 1
    )

    def recorded() -> bool:
        status = get_schedule(stack, "tick").get("status") or {}
        return bool(status.get("lastSuccessfulRun")) and bool(status.get("lastScheduleTime"))

    wait_until(recorded, timeout=60, interval=0.2, what="lastSuccessfulRun in the status")
    status = get_schedule(stack, "tick")["status"]
    assert when(status["lastScheduleTime"]) >= fires[-1]
    assert kv.phase(kv.get(stack.cp, "workflow", stack.namespace, status["lastSuccessfulRun"])) in (
        "Succeeded",
        None,  # already deleted by the history limit: then a newer one succeeded
    )
    scheduled = kv.condition(get_schedule(stack, "tick"), "Scheduled")
    assert scheduled is not None
    assert scheduled["status"] == "True"


@pytest.mark.parametrize(
    "stack_options", [StackOptions(agents=AGENTS, task_seconds=5.0)], indirect=True
)
def test_forbid_starts_no_run_while_one_is_active(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha", "beta"))
    apply(
        stack,
        schedule(
            "serial", "* * * * * */2", concurrencyPolicy="Forbid", successfulRunsHistoryLimit=10
        ),
    )

    def two_finished() -> bool:
        return sum(kv.phase(r) in FINISHED for r in runs_of(stack, "serial")) >= 2

    wait_until(two_finished, timeout=90, interval=0.3, what="two runs of serial finished")
    runs = runs_of(stack, "serial")
    finished = [r for r in runs if kv.phase(r) in FINISHED]
    for earlier, later in itertools.pairwise(runs):
        ended_at = (earlier.get("status") or {}).get("completionTime")
        assert ended_at is not None, f"{later['metadata']['name']} began while another was active"
        ended = when(ended_at)
        started = when(later["metadata"]["creationTimestamp"])
        # creationTimestamp has whole seconds: a run started in the second the previous
        # one ended reads up to 1 s early.
        assert started >= ended - timedelta(seconds=1), (earlier["metadata"]["name"], later)
    fires = [fire_time(r) for r in finished]
    assert all(b - a > timedelta(seconds=2) for a, b in itertools.pairwise(fires))


def test_an_operator_killed_right_after_creating_a_run_creates_no_duplicate(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("alpha", "beta"))
    apply(stack, schedule("crashy", "* * * * * */3", successfulRunsHistoryLimit=20))
    before = wait_runs(stack, "crashy", 1)
    # Kill it the moment a new run appears: its status write may not have gone out.
    wait_runs(stack, "crashy", len(before) + 1)
    stack.restart_operator(kill=True)
    after_restart = len(runs_of(stack, "crashy"))
    runs = wait_runs(stack, "crashy", after_restart + 2)
    fires = [fire_time(r) for r in runs]
    assert len(fires) == len(set(fires)), "two runs for one fire time"
    for run in runs:
        assert run["metadata"]["name"] == f"crashy-{int(fire_time(run).timestamp())}"

    def caught_up() -> bool:
        last = (get_schedule(stack, "crashy").get("status") or {}).get("lastScheduleTime")
        return last is not None and when(last) >= fires[-1]

    wait_until(caught_up, timeout=30, interval=0.2, what="lastScheduleTime after the restart")


def test_after_downtime_at_most_one_missed_run_starts_and_none_past_the_deadline(
    stack: OpsCoreStack,
) -> None:
    agents_ready(stack, ("alpha", "beta"))
    assert stack.operator is not None
    stack.operator.stop()
    # Three fire times, all while the operator is down, and the next a minute later.
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    seconds = [(first + timedelta(seconds=2 * i)).second for i in range(3)]
    last_fire = first + timedelta(seconds=4)
    expression = f"* * * * * {','.join(str(s) for s in seconds)}"
    apply(
        stack,
        schedule("catch-up", expression),
        schedule("too-late", expression, startingDeadlineSeconds=2),
    )
    wait_clock(last_fire + timedelta(seconds=3))
    stack.start_operator()
    started = time.monotonic()

    runs = wait_runs(stack, "catch-up", 1, timeout=30)
    assert [fire_time(r) for r in runs] == [last_fire]

    def skipped() -> bool:
        return any(e.get("reason") == "MissedStartingDeadline" for e in events(stack, "too-late"))

    wait_until(skipped, timeout=30, interval=0.2, what="a MissedStartingDeadline Event")
    assert runs_of(stack, "too-late") == []
    assert len(runs_of(stack, "catch-up")) == 1
    assert time.monotonic() - started < 40  # still before the next minute's fire times


def test_deleting_a_schedule_garbage_collects_its_runs(stack: OpsCoreStack) -> None:
    agents_ready(stack, ("alpha", "beta"))
    apply(stack, schedule("doomed", "* * * * * */2"))
    runs = wait_runs(stack, "doomed", 2)
    uid = get_schedule(stack, "doomed")["metadata"]["uid"]
    for run in runs:
        (owner,) = run["metadata"]["ownerReferences"]
        assert (owner["uid"], owner["controller"], owner["blockOwnerDeletion"]) == (uid, True, True)
    stack.cp.kubectl("delete", "workflowschedule", "doomed", "-n", stack.namespace)
    wait_until(
        lambda: runs_of(stack, "doomed") == [],
        timeout=60,
        interval=0.3,
        what="the garbage collector deleting the runs of doomed",
    )
