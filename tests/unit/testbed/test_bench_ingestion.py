"""B4's helpers: the heap the load generator freezes while it measures, and which probe
names the machine's load at the first missed rate."""

from __future__ import annotations

import gc
from typing import Any

from opscore_testbed.bench.ingestion import _first_miss_cores, settled_heap


def test_what_the_process_held_before_the_load_is_frozen_only_during_it() -> None:
    held = [object() for _ in range(1000)]
    assert gc.get_freeze_count() == 0
    with settled_heap():
        assert gc.get_freeze_count() >= len(held)
    assert gc.get_freeze_count() == 0


def test_an_error_in_the_load_still_unfreezes() -> None:
    try:
        with settled_heap():
            raise RuntimeError("probe failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


def step(rate: float, cores: float) -> dict[str, Any]:
    return {"offered_per_s": rate, "machine_busy_cores": cores}


def test_the_first_miss_is_the_lowest_rate_probed_above_the_best() -> None:
    steps = [step(400, 1.9), step(200, 1.2), step(300, 1.6), step(250, 1.4)]
    assert _first_miss_cores(steps, step(250, 1.4)) == 1.6
    assert _first_miss_cores(steps, step(400, 1.9)) is None  # nothing above it: capped
    assert _first_miss_cores(steps, None) == 1.2  # even the lowest missed
