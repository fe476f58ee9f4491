"""The bounded report log loses no outcome: under any interleaving of dispatches, agent
reports (heartbeats, task starts and ends, with or without task ids) and operator passes,
the outcomes the operator infers from the log the sidecar keeps (`report_limit` entries)
are the ones it would infer from every report ever sent.

The model is the product's: the operator gives an agent at most `maxConcurrentTasks`
tasks, reads the agent's `status.reports` at each pass, releases the tasks whose outcome
the reports tell, and dispatches new ones; between two passes the agent may send any
number of heartbeats and end every task it holds.

One thing the model leaves out: an agent that sends task ids but also reports `idle`
without one while it still holds a task. The operator reads such an `idle` as the end of
every task of that agent without a report of its own (`outcomes.py`'s rule for agents
that send no task id), so once a long task's own `active` has been pushed out of the log
by the reports of later tasks, that `idle` ends it. An unbounded log would have kept the
`active`. Correlated agents (`opscore_client`) report `idle` with the task id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opscore_logic.agent_model import AgentReport
from opscore_logic.outcomes import TASK_ID_KEY, infer_outcome
from opscore_logic.report_log import merge_reports, report_limit

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass
class Task:
    task_id: str
    dispatched_at: datetime
    started: bool = False
    ended: bool = False


@dataclass
class Agent:
    """One agent, its two logs (bounded as stored, unbounded as sent) and the operator's
    view of it."""

    slots: int
    correlated: bool
    clock: int = 0
    bounded: list[AgentReport] = field(default_factory=list)
    everything: list[AgentReport] = field(default_factory=list)
    in_flight: list[Task] = field(default_factory=list)
    dispatched: int = 0
    ended_unseen: int = 0

    def now(self) -> datetime:
        self.clock += 1
        return T0 + timedelta(milliseconds=self.clock)

    def send(self, reports: list[AgentReport]) -> None:
        """One sidecar write holding `reports` (a batch)."""
        self.bounded = merge_reports(self.bounded, reports, limit=report_limit(self.slots))
        self.everything = merge_reports(self.everything, reports, limit=10**9)

    def report(self, state: str, task: Task | None = None, **details: Any) -> AgentReport:
        at = self.now()
        if task is not None and self.correlated:
            details[TASK_ID_KEY] = task.task_id
        return AgentReport(state=state, timestamp=at, received_at=at, details=details)

    def operator_pass(self) -> None:
        """Read both logs for each task in flight: they must tell the same outcome."""
        still: list[Task] = []
        for task in self.in_flight:
            told = infer_outcome(
                self.bounded, task_id=task.task_id, dispatched_at=task.dispatched_at
            )
            truth = infer_outcome(
                self.everything, task_id=task.task_id, dispatched_at=task.dispatched_at
            )
            assert (told is None) == (truth is None), _explain(task, self.bounded, self.everything)
            if told is not None and truth is not None:
                assert (told.succeeded, told.message) == (truth.succeeded, truth.message)
                continue  # released
            still.append(task)
        self.in_flight = still
        while len(self.in_flight) < self.slots:
            self.dispatched += 1
            self.in_flight.append(Task(f"task-{self.dispatched}", self.now()))


def _explain(task: Task, bounded: list[AgentReport], everything: list[AgentReport]) -> str:
    def line(r: AgentReport) -> str:
        return f"{r.timestamp.microsecond // 1000}ms {r.state} {r.details.get(TASK_ID_KEY, '')}"

    return (
        f"{task.task_id} dispatched at {task.dispatched_at.microsecond // 1000}ms\n"
        f"kept: {[line(r) for r in bounded]}\nsent: {[line(r) for r in everything]}"
    )


operations = st.lists(
    st.one_of(
        st.just(("pass",)),
        st.tuples(st.just("heartbeat"), st.sampled_from(["active", "idle", "busy"])),
        st.tuples(st.just("start"), st.integers(0, 7)),
        st.tuples(st.just("end"), st.integers(0, 7), st.booleans()),
        st.tuples(st.just("burst"), st.integers(0, 7), st.integers(0, 6)),
    ),
    max_size=80,
)


def run(agent: Agent, ops: list[tuple[Any, ...]]) -> None:
    agent.operator_pass()
    for op in ops:
        if op[0] == "pass":
            agent.operator_pass()
        elif op[0] == "heartbeat":
            holds = any(not task.ended for task in agent.in_flight)
            if op[1] == "idle" and holds and agent.correlated:
                continue  # see the module docstring: not what a correlated agent says
            agent.send([agent.report(op[1])])
        elif op[0] in ("start", "end"):
            held = [t for t in agent.in_flight if not t.ended]
            if not held:
                continue
            task = held[op[1] % len(held)]
            if op[0] == "start":
                task.started = True
                agent.send([agent.report("active", task)])
            else:
                task.ended = True
                if op[2]:
                    agent.send([agent.report("idle", task)])
                else:
                    agent.send([agent.report("error", task, error_code="E", message="failed")])
        else:  # several reports in one write: the ends of tasks among heartbeats
            held = [t for t in agent.in_flight if not t.ended]
            batch = [agent.report("active") for _ in range(op[2])]
            for task in held[: op[1]]:
                task.ended = True
                batch.append(agent.report("active", task))
                batch.append(agent.report("idle", task))
            agent.send(batch)
    agent.operator_pass()


@settings(max_examples=400, deadline=None)
@given(slots=st.integers(1, 12), ops=operations)
def test_correlated_agents_lose_no_outcome_in_the_bounded_log(
    slots: int, ops: list[tuple[Any, ...]]
) -> None:
    run(Agent(slots=slots, correlated=True), ops)


@settings(max_examples=400, deadline=None)
@given(ops=operations)
def test_one_task_agents_without_task_ids_lose_no_outcome_in_the_bounded_log(
    ops: list[tuple[Any, ...]],
) -> None:
    run(Agent(slots=1, correlated=False), ops)


def test_the_log_has_two_entries_per_slot_and_two_more_within_its_bounds() -> None:
    assert [report_limit(slots) for slots in (1, 2, 3, 8, 31, 32, 100)] == [4, 6, 8, 18, 64, 64, 64]
