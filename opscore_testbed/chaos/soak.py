"""F8: a long run of steady mixed load, watching the operator's and the sidecar's memory
and open files for growth. Benchmark-style (minutes, not for CI): `--soak-minutes`.

Finished workflows are deleted by `ttlSecondsAfterFinished`, as a long-lived install
would have them, so what the processes hold should level off rather than grow with the
number of workflows ever run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from opscore_testbed.chaos import procstats
from opscore_testbed.chaos.batch import Batch
from opscore_testbed.chaos.harness import Chaos, Run
from opscore_testbed.chaos.report import promise
from opscore_testbed.chaos.scenario import Fault, Outcome, Row, make_row
from opscore_testbed.chaos.tally import tally
from opscore_testbed.chaos.workload import mixed_batch

RATE = 1.0  # workflows per second: steady, well below saturation on 2 cores
SAMPLE_EVERY_S = 10.0
WARM_UP_S = 60.0  # caches, pools and imports fill up first: growth is measured after
TTL_S = 30
#: F8's promise, from the first sample after the warm-up to the last: RSS grows by at most
#: this much, whatever the soak's length (a leak per workflow would pass it within minutes
#: at 1 workflow/s: 1,200 workflows in 20 minutes, so 16 KiB each is 20 MiB) ...
RSS_GROWTH_MIB = 20.0
#: ... and open files by at most this many (connections come and go; a leak only grows).
FDS_GROWTH = 10


def _sample(run: Run) -> dict[str, float]:
    operator, sidecar = run.stack.operator, run.stack.sidecar
    assert operator is not None
    assert sidecar is not None
    return {
        "t": time.monotonic(),
        "operator_rss_mib": procstats.rss_mib(operator.pid),
        "operator_fds": procstats.open_files(operator.pid),
        "sidecar_rss_mib": procstats.rss_mib(sidecar.pid),
        "sidecar_fds": procstats.open_files(sidecar.pid),
    }


def growth(samples: list[dict[str, float]], key: str) -> dict[str, Any]:
    """First sample after the warm-up, last, max, and the slope per 10 minutes."""
    began = samples[0]["t"]
    settled = [s for s in samples if s["t"] - began >= WARM_UP_S] or samples
    first, last = settled[0], samples[-1]
    span = max(1.0, last["t"] - first["t"])
    return {
        "start": first[key],
        "end": last[key],
        "max": max(s[key] for s in samples),
        "per_10min": round((last[key] - first[key]) / span * 600, 1),
    }


async def f8_soak(ch: Chaos) -> Row:
    seconds = ch.soak_minutes * 60
    samples: list[dict[str, float]] = []
    fault = Fault()

    async def sample_forever(run: Run) -> None:
        while True:
            samples.append(_sample(run))
            await asyncio.sleep(SAMPLE_EVERY_S)

    async with ch.running("f8") as run, Batch(ch.kube, run.namespace) as batch:
        sampler = asyncio.create_task(sample_forever(run))
        fault.begin()
        planned = mixed_batch(
            "f8",
            max(1, int(seconds * RATE)),
            ch.sizes.policy(),
            extra_spec={"ttlSecondsAfterFinished": TTL_S},
        )
        try:
            await batch.submit(planned, RATE)  # open loop: workflow i at i/RATE seconds
            fault.end()
            await batch.wait(ch.sizes.deadline_s)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        samples.append(_sample(run))
        snapshot = await run.sim.tasks()
        counted = tally(batch.planned, batch.watcher.final, snapshot)
        operator, sidecar = run.stack.operator, run.stack.sidecar
        alive = bool(operator and operator.is_running() and sidecar and sidecar.is_running())
    fault.figures = {
        "recover_s": None,
        "minutes": round(seconds / 60, 1),
        "operator_rss_mib": growth(samples, "operator_rss_mib"),
        "operator_fds": growth(samples, "operator_fds"),
        "sidecar_rss_mib": growth(samples, "sidecar_rss_mib"),
        "sidecar_fds": growth(samples, "sidecar_fds"),
        "processes_survived": alive,
    }
    outcome = Outcome(counted, fault, batch, snapshot.get("tasks", []))
    for process, key in (
        ("operator", "rss_mib"),
        ("operator", "fds"),
        ("sidecar", "rss_mib"),
        ("sidecar", "fds"),
    ):
        figure = fault.figures[f"{process}_{key}"]
        fault.figures[f"{process}_{key}_growth"] = round(figure["end"] - figure["start"], 1)
    row = make_row(
        "F8",
        f"soak: {RATE:g} mixed workflows/s, steady",
        outcome,
        promises=(
            promise("processes_survived", True),
            promise("undelivered_attempts", 0),
            promise("operator_rss_mib_growth", RSS_GROWTH_MIB),
            promise("sidecar_rss_mib_growth", RSS_GROWTH_MIB),
            promise("operator_fds_growth", FDS_GROWTH),
            promise("sidecar_fds_growth", FDS_GROWTH),
        ),
    )
    row["fault_s"] = None
    return row
