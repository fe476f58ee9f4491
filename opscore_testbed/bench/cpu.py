"""CPU seconds a process used, from /proc: a figure that travels between machines better
than wall time (issue 20). `CpuMeter` reads utime + stime of each named pid at the start of
a window and again at its end; a Go or Python process's threads are all in its own stat."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` so far, in seconds. Raises FileNotFoundError (or
    ProcessLookupError) once the process is gone: a meter of a dead process has no figure."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU seconds per named process over one window: `start()`, then `stop()`."""

    pids: dict[str, int]
    _started: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds each process used since `start()`."""
        if not self._started:
            raise RuntimeError("CpuMeter.stop() before start()")
        return {name: cpu_seconds(pid) - self._started[name] for name, pid in self.pids.items()}


def ms_per_step(used: dict[str, float], steps: int) -> dict[str, float]:
    """CPU milliseconds per step by process (CPU seconds per 1,000 steps is the same
    number): `cpu_<name>_ms_per_step` keys for a result row."""
    return {
        f"cpu_{name}_ms_per_step": round(seconds * 1000 / steps, 2)
        for name, seconds in used.items()
    }


#: The yardstick process of `relative_cpu` and the processes it is a yardstick for.
YARDSTICK = "kube_apiserver"
MEASURED_AGAINST = ("operator", "sidecar")


def relative_cpu(used: dict[str, float]) -> dict[str, float | None]:
    """Ops-Core's CPU over kube-apiserver's in the same window: `cpu_<name>_vs_kube_apiserver`
    keys for a result row (None when kube-apiserver used none).

    CPU per step does not carry between hosts as well as issue 20 hoped: on a slower host
    every process's grows alike, so a ratio within one run tells a slower host (every
    figure moves, the ratio much less) from a costlier operator (the ratio moves). The
    runs that showed it are compared in docs/performance.md."""
    base = used.get(YARDSTICK)
    return {
        f"cpu_{name}_vs_{YARDSTICK}": (round(used[name] / base, 3) if base else None)
        for name in MEASURED_AGAINST
        if name in used
    }


def machine_ticks(stat: str | None = None) -> tuple[int, int]:
    """(all CPU ticks, stolen ticks) of the whole machine so far, from /proc/stat's `cpu`
    line: on a VM, time the hypervisor gave to others while this one wanted to run."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    line = next(row for row in text.splitlines() if row.startswith("cpu "))
    ticks = [int(value) for value in line.split()[1:9]]  # user .. steal; guest is in user
    return sum(ticks), ticks[7]


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time stolen between two `machine_ticks()` readings."""
    total = after[0] - before[0]
    return round((after[1] - before[1]) * 100 / total, 2) if total > 0 else 0.0


def machine_busy(stat: str | None = None) -> tuple[int, int]:
    """(all CPU ticks, busy ticks) of the whole machine so far, from /proc/stat's `cpu`
    line: busy is all but idle and iowait, whoever used it (the load generator too)."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    line = next(row for row in text.splitlines() if row.startswith("cpu "))
    ticks = [int(value) for value in line.split()[1:9]]  # user .. steal; guest is in user
    return sum(ticks), sum(ticks) - ticks[3] - ticks[4]


def busy_cores(before: tuple[int, int], after: tuple[int, int], cores: int) -> float:
    """How many of the machine's `cores` were busy between two `machine_busy()` readings."""
    total = after[0] - before[0]
    return round((after[1] - before[1]) * cores / total, 2) if total > 0 else 0.0
