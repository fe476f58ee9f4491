"""Two leader-elected operator replicas on the real control plane: the standby takes over
when the leader is SIGKILLed or SIGTERMed, and a leader paused past its lease that wakes
up (split brain) sends nothing and exits, while the run finishes with no task twice.

Durations are shortened (lease 4 s, renew deadline 3 s, retry 0.5 s); the defaults are
15/10/2 and scale these figures accordingly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import agents_ready, apply, step, wait_finished, workflow

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.replicas import LeaseTimes, OperatorReplicas
from opscore_testbed.stack import OpsCoreStack, StackOptions

TIMES = LeaseTimes(lease=4.0, renew_deadline=3.0, retry=0.5)
AGENTS = ("alpha", "beta")


@pytest.fixture
def ha(crds: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[OperatorReplicas]:
    """Sidecar + AgentKit simulator + two operator replicas, all real processes."""
    options = StackOptions(agents=tuple(f"{a}:work" for a in AGENTS), task_seconds=0.5)
    stack = OpsCoreStack(crds, namespace, tmp_path / "logs", options)
    replicas = OperatorReplicas(stack, count=2, times=TIMES)
    try:
        stack.start_sidecar()
        stack.start_sim()
        replicas.start()
        agents_ready(stack, AGENTS)
        yield replicas
    finally:
        replicas.stop()
        stack.stop()


def run(replicas: OperatorReplicas, name: str, steps: int = 2, **fields: Any) -> None:
    """A chain of `steps` steps that must succeed (on any agent, unless `fields` say)."""
    fields = fields or {"capabilities": ["work"]}
    apply(
        replicas.stack,
        workflow(name, *(step(f"s{i}", **fields) for i in range(steps))),
    )


def assert_succeeded(replicas: OperatorReplicas, *names: str) -> None:
    for name in names:
        assert kv.phase(wait_finished(replicas.stack, name, timeout=90)) == "Succeeded", name


def assert_no_task_twice(replicas: OperatorReplicas, expected_tasks: int) -> None:
    counts = replicas.stack.sim_tasks()
    assert {task: n for task, n in counts.items() if n > 1} == {}
    assert len(counts) == expected_tasks


def test_the_standby_takes_over_when_the_leader_is_killed(ha: OperatorReplicas) -> None:
    leader = ha.wait_for_leader()
    run(ha, "before")
    assert_succeeded(ha, "before")

    killed = ha.sigkill(leader)
    run(ha, "after")
    successor = ha.wait_for_leader(other_than=leader, timeout=TIMES.lease * 3)
    took_over = time.monotonic() - killed
    assert_succeeded(ha, "after")

    assert successor != leader
    assert took_over <= TIMES.lease + 2.0 + 2.0  # the target, plus kubectl's polling
    assert_no_task_twice(ha, expected_tasks=4)


def test_a_terminated_leader_hands_over_within_two_seconds(ha: OperatorReplicas) -> None:
    leader = ha.wait_for_leader()
    sent = ha.sigterm(leader)
    ha.wait_for_leader(other_than=leader, timeout=TIMES.lease * 3)
    assert time.monotonic() - sent < 2.0
    wait_until(
        lambda: not ha.processes[leader].is_running(), timeout=15, what="the old leader to exit"
    )
    assert ha.processes[leader].returncode == 0
    run(ha, "after")
    assert_succeeded(ha, "after")
    assert_no_task_twice(ha, expected_tasks=2)


def test_a_leader_paused_past_its_lease_sends_nothing_when_it_wakes(
    ha: OperatorReplicas,
) -> None:
    leader = ha.wait_for_leader()
    run(ha, "long", steps=6)
    wait_until(lambda: len(ha.stack.sim_tasks()) >= 2, timeout=30, what="the run to be under way")
    ha.pause(leader)
    try:
        successor = ha.wait_for_leader(other_than=leader, timeout=TIMES.lease * 4)
        run(ha, "during")
        wait_until(
            lambda: len(ha.stack.sim_tasks()) >= 7, timeout=60, what="the successor to dispatch"
        )
    finally:
        ha.resume(leader)
    wait_until(
        lambda: not ha.processes[leader].is_running(), timeout=15, what="the old leader to quit"
    )
    assert ha.processes[leader].returncode == 3  # "lost the Lease"
    assert_succeeded(ha, "long", "during")
    assert ha.holder() == successor
    assert_no_task_twice(ha, expected_tasks=8)


def test_a_standby_that_synced_mid_run_takes_over_from_the_statuses_not_its_sync(
    ha: OperatorReplicas,
) -> None:
    leader = ha.wait_for_leader()
    standby = next(name for name in ha.processes if name != leader)
    ha.sigkill(standby)  # start over with a standby that syncs while tasks are in flight
    run(ha, "relay", steps=30, agent="alpha")  # one agent: a stale reservation blocks it
    wait_until(lambda: len(ha.stack.sim_tasks()) >= 2, timeout=30, what="the relay under way")
    ha.start_replica("late")  # it adopts the task in flight now...
    seen = len(ha.stack.sim_tasks())
    wait_until(
        lambda: len(ha.stack.sim_tasks()) >= seen + 2, timeout=30, what="the leader to go on"
    )
    ha.sigkill(leader)  # ...which the leader has finished since
    assert ha.wait_for_leader(other_than=leader, timeout=TIMES.lease * 3) == "late"
    assert_succeeded(ha, "relay")
    assert_no_task_twice(ha, expected_tasks=30)
