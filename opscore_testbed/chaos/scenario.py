"""The shape every workload scenario (F1-F6) shares: submit a batch under load, inject the
fault while it runs, wait for every workflow up to a deadline, count, and make the row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.tally import TASK_FAILED, Tally, tally
from opscore_testbed.chaos.timeline import first_task_after
from opscore_testbed.chaos.workload import Planned

Row = dict[str, Any]


@dataclass
class Fault:
    """When the fault began and when it was over (epoch seconds), and what it measured."""

    started: float = 0.0
    ended: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)

    def begin(self) -> float:
        self.started = time.time()
        return self.started

    def end(self) -> float:
        self.ended = time.time()
        return self.ended


Inject = Callable[[Run, Batch, Fault], Awaitable[None]]


@dataclass
class Outcome:
    tally: Tally
    fault: Fault
    batch: Batch
    tasks: list[dict[str, Any]]


async def under_fault(
    ch: Chaos,
    run: Run,
    planned: list[Planned],
    inject: Inject,
    *,
    failure_reasons: frozenset[str] = TASK_FAILED,
    rate: float | None = None,
) -> Outcome:
    """Submit `planned` at the scenario's rate while `inject` runs; wait up to the deadline
    after both are done; count."""
    fault = Fault()
    async with Batch(ch.kube, run.namespace) as batch:
        submitting = asyncio.create_task(batch.submit(planned, rate or ch.sizes.rate))
        try:
            await inject(run, batch, fault)
        finally:
            await submitting
        await batch.wait(ch.sizes.deadline_s)
        snapshot = await run.sim.tasks()
        counted = tally(
            batch.planned, batch.watcher.final, snapshot, failure_reasons=failure_reasons
        )
    return Outcome(counted, fault, batch, snapshot.get("tasks", []))


def window(ch: Chaos) -> float:
    """How long the submission of one batch lasts: the time the faults are spread over."""
    return ch.sizes.workflows / ch.sizes.rate


async def sleep_until(started: float, offset: float) -> None:
    """Sleep until `offset` seconds after the monotonic moment `started`."""
    delay = started + offset - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def make_row(
    scenario: str,
    fault_text: str,
    outcome: Outcome,
    *,
    promises: tuple[tuple[str, Any, str], ...] = (),
    **extra: Any,
) -> Row:
    """The printed row: counts, then the timings measured from the fault's end.

    `promises` are what docs/reliability.md says of this scenario beyond the counts every
    scenario keeps at 0 (`report.ALWAYS_ZERO`): (field, bound) pairs that fail the suite
    when the row's field exceeds the bound (or differs from it)."""
    fault = outcome.fault
    row: Row = {"scenario": scenario, "fault": fault_text, **outcome.tally.figures()}
    row["fault_s"] = round(fault.ended - fault.started, 1)
    if "recover_s" not in fault.figures:
        resumed = first_task_after(outcome.tasks, fault.ended)
        row["recover_s"] = round(resumed - fault.ended, 2) if resumed is not None else None
    last = outcome.batch.last_finished()
    row["drain_s"] = round(last - fault.ended, 1) if last is not None else None
    row.update(fault.figures)
    row.update(extra)
    row["promises"] = [list(p) for p in promises]
    row["problems"] = []
    counted = outcome.tally
    row["evidence"] = {
        key: value
        for key, value in (
            ("lost", counted.lost[:5]),
            ("unexpected", counted.unexpected[:5]),
            ("duplicated", sorted(counted.duplicated)[:5]),
            ("unconfirmed_successes", counted.unconfirmed_successes[:5]),
            ("unaccounted_tasks", counted.unaccounted_tasks[:5]),
        )
        if value
    }
    return row
