"""CPU per process from /proc, on real processes: a busy one shows its second of CPU,
a sleeping one almost none, and CPU ms per step divides by the steps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from opscore_testbed.bench.cpu import (
    CpuMeter,
    busy_cores,
    cpu_seconds,
    machine_busy,
    machine_ticks,
    ms_per_step,
    relative_cpu,
    steal_percent,
)

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 30: pass"


@pytest.fixture
def busy_and_idle() -> Iterator[tuple[int, int]]:
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield busy.pid, idle.pid
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait(timeout=10)


def test_a_busy_process_uses_cpu_and_a_sleeping_one_does_not(
    busy_and_idle: tuple[int, int],
) -> None:
    busy, idle = busy_and_idle
    meter = CpuMeter({"busy": busy, "idle": idle})
    meter.start()
    # Wait on the condition (the busy one has a quarter second), not a fixed time.
    deadline = time.monotonic() + 20
    while cpu_seconds(busy) - meter._started["busy"] < 0.25 and time.monotonic() < deadline:
        time.sleep(0.05)
    used = meter.stop()
    assert used["busy"] >= 0.25
    assert used["idle"] < 0.1


def test_a_dead_process_has_no_figure() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=10)
    with pytest.raises(FileNotFoundError):
        cpu_seconds(process.pid)


def test_ms_per_step_names_each_process() -> None:
    assert ms_per_step({"operator": 2.0, "kube-apiserver": 5.0}, 1000) == {
        "cpu_operator_ms_per_step": 2.0,
        "cpu_kube-apiserver_ms_per_step": 5.0,
    }


def test_ops_cores_cpu_is_also_given_as_a_share_of_kube_apiservers_in_the_same_window() -> None:
    used = {"operator": 1.5, "sidecar": 0.5, "kube_apiserver": 6.0, "etcd": 1.0}
    assert relative_cpu(used) == {
        "cpu_operator_vs_kube_apiserver": 0.25,
        "cpu_sidecar_vs_kube_apiserver": 0.083,
    }


def test_a_share_of_nothing_is_no_figure() -> None:
    assert relative_cpu({"operator": 1.0, "kube_apiserver": 0.0}) == {
        "cpu_operator_vs_kube_apiserver": None
    }


PROC_STAT = """cpu  1000 50 400 8000 30 0 20 500 0 0
cpu0 500 25 200 4000 15 0 10 250 0 0
intr 123
"""


def test_the_machines_stolen_share_is_its_steal_ticks_over_all_ticks() -> None:
    before = machine_ticks(PROC_STAT)
    assert before == (1000 + 50 + 400 + 8000 + 30 + 0 + 20 + 500, 500)
    after = (before[0] + 1000, before[1] + 100)
    assert steal_percent(before, after) == 10.0
    assert steal_percent(before, before) == 0.0  # no time passed: no share
    total, stolen = machine_ticks()  # this machine's own /proc/stat reads
    assert total > 0
    assert 0 <= stolen <= total


def test_the_machines_busy_cores_count_all_but_idle_and_iowait() -> None:
    total, busy = machine_busy(PROC_STAT)
    assert (total, busy) == (10000, 10000 - 8000 - 30)
    # 2 cores, 1,000 ticks elapsed of which 750 busy: 1.5 cores busy.
    assert busy_cores((total, busy), (total + 1000, busy + 750), 2) == 1.5
    assert busy_cores((total, busy), (total, busy), 2) == 0.0


def test_a_busy_process_shows_in_the_machines_busy_cores(busy_and_idle: tuple[int, int]) -> None:
    before = machine_busy()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        pass  # this process is busy too: at least one core of the window
    # Two busy processes (this one and the fixture's): well over one core's worth.
    assert busy_cores(before, machine_busy(), os.cpu_count() or 1) >= 0.9
