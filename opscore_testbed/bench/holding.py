"""B4's second question: does the rate its search found hold for longer than one probe?

The search's probes last `Sizes.b4_seconds` (10 s at `full`), and the API server does not
reach a steady state in 10 s. Its watch cache for Agents keeps recent events, each with
the decoded object and the one before it, and the cache grows while its oldest event is
younger than 75 s (kube-apiserver doubles it then). Measured here, 500 reports/s on a
fresh control plane in consecutive 10 s windows:
- the cache went 3,200 -> 12,800 events in 30 s;
- kube-apiserver's heap went ~330 -> 520-780 MiB, and its CPU 0.98 -> 1.07 cores;
- durable p50 went 9 -> 40 ms and p99 110 -> ~290 ms.

So after the search, B4 sends the rate it found for `Sizes.b4_hold_seconds` and judges
the last `JUDGED_SHARE` of it: what an agent fleet reporting at that rate all day would
see. The row keeps the p99 of every `WINDOW_S` window too (the drift), and the cache's
size and the API server's heap before and after. When the found rate does not hold,
`hold_down` tries lower shares of it (`HOLD_SHARES`) on the same, grown API server until
one does: the rate a fleet can keep (`holds_at_per_s`), a lower bound at that
granularity.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from opscore_testbed.bench.common import pct
from opscore_testbed.bench.cpu import CpuMeter, busy_cores, machine_busy
from opscore_testbed.bench.kube import BenchKube

#: The share of the hold that is judged: the end of it, after the API server has grown.
JUDGED_SHARE = 1 / 3
#: Reports are grouped into windows this long for the drift list.
WINDOW_S = 10.0
#: The shares of the searched rate `hold_down` tries, in order, until one holds.
HOLD_SHARES = (1.0, 0.75, 0.5)
#: The states the sidecar answers only once stored (one Agent status write each).
DURABLE = frozenset({"idle", "error"})
#: One report sent: (seconds from send to response, HTTP status or 0, the state sent).
Sent = tuple[float, int, str]

_GAUGES = {
    'watch_cache_capacity{group="opscore.opspawn.io",resource="agents"}': "watch_cache_events",
    "go_memstats_heap_inuse_bytes": "apiserver_heap_mib",
}


def parse_gauges(metrics: str) -> dict[str, float]:
    """kube-apiserver's Agent watch cache capacity (events) and its heap in use (MiB),
    from its /metrics text; a gauge it does not export is left out."""
    found: dict[str, float] = {}
    for line in metrics.splitlines():
        name, _, value = line.rpartition(" ")
        key = _GAUGES.get(name)
        if key is None:
            continue
        number = float(value)
        found[key] = round(number / 2**20, 1) if key == "apiserver_heap_mib" else number
    return found


async def apiserver_gauges(kube: BenchKube) -> dict[str, float]:
    return parse_gauges(await kube.raw_get("/metrics"))


def window_p99s(sent: list[Sent], rate: float, *, window_s: float = WINDOW_S) -> list[float]:
    """The p99 (ms) of the durable reports answered 202 in each `window_s` of sending,
    in order. Report i was sent at i / rate (the load is open-loop)."""
    per_window = max(1, round(rate * window_s))
    out: list[float] = []
    for start in range(0, len(sent), per_window):
        window = sent[start : start + per_window]
        chunk = [lat for lat, code, state in window if _durable(code, state)]
        if chunk:
            out.append(round(pct(chunk, 99) * 1000, 1))
    return out


def judged(sent: list[Sent], *, share: float = JUDGED_SHARE) -> list[Sent]:
    """The last `share` of the reports, by when they were sent."""
    return sent[len(sent) - max(1, round(len(sent) * share)) :]


def verdict(sent: list[Sent], bound_ms: float, seconds: float) -> dict[str, Any]:
    """The judged part's figures (of a send `seconds` long), and whether it kept every
    report and the durable ones under `bound_ms` at p99 without an error."""
    part = judged(sent)
    answered = [lat for lat, code, _ in part if code == 202]
    durable = [lat for lat, code, state in part if _durable(code, state)]
    errors = sum(1 for _, code, _ in part if code != 202)
    p99 = round(pct(answered, 99) * 1000, 1) if answered else None
    durable_p99 = round(pct(durable, 99) * 1000, 1) if durable else None
    worst = max(p99 or float("inf"), durable_p99 or 0.0)
    return {
        "held_p99_ms": p99,
        "held_durable_p99_ms": durable_p99,
        "held_durable_per_s": round(len(durable) / (seconds * JUDGED_SHARE), 1),
        "held_errors": errors,
        "held": worst <= bound_ms and not errors,
    }


def shares_of(rate: float, resolution: float) -> list[float]:
    """The distinct rates `hold_down` tries: `HOLD_SHARES` of `rate`, each rounded to the
    search's `resolution` (never below it), highest first."""
    rates: list[float] = []
    for share in HOLD_SHARES:
        tried = max(resolution, round(rate * share / resolution) * resolution)
        if not rates or tried < rates[-1]:
            rates.append(tried)
    return rates


def _durable(code: int, state: str) -> bool:
    return code == 202 and state in DURABLE


async def hold(
    kube: BenchKube,
    send: Callable[[float, float], Coroutine[Any, Any, list[Sent]]],
    rate: float,
    seconds: float,
    meter: CpuMeter,
    bound_ms: float,
) -> dict[str, Any]:
    """Send at `rate` for `seconds` (`send(rate, seconds)` returns what each report got)
    and judge the end of it; CPU and busy cores are taken over the judged part alone."""
    before = await apiserver_gauges(kube)
    sending: asyncio.Task[list[Sent]] = asyncio.create_task(send(rate, seconds))
    await asyncio.sleep(seconds * (1 - JUDGED_SHARE))
    meter.start()
    machine_before = machine_busy()
    started = asyncio.get_running_loop().time()
    sent = await sending
    elapsed = asyncio.get_running_loop().time() - started
    used = meter.stop()
    machine = busy_cores(machine_before, machine_busy(), os.cpu_count() or 1)
    after = await apiserver_gauges(kube)
    return {
        "held_seconds": seconds,
        "held_offered_per_s": rate,
        **verdict(sent, bound_ms, seconds),
        "held_window_durable_p99_ms": window_p99s(sent, rate),
        "held_machine_busy_cores": machine,
        "held_cores": {name: round(cpu / elapsed, 2) for name, cpu in used.items()},
        **{f"{key}_before": value for key, value in before.items()},
        **{f"{key}_after": value for key, value in after.items()},
    }


async def hold_down(
    kube: BenchKube,
    send: Callable[[float, float], Coroutine[Any, Any, list[Sent]]],
    found: float,
    resolution: float,
    seconds: float,
    meter: CpuMeter,
    bound_ms: float,
    settle: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """`hold` the searched rate `found`; while a rate does not hold, the next lower share
    of it (`shares_of`), each after `settle()`. The row has the first hold's figures (the
    found rate's), every try in brief, and the highest rate that held (None: none did)."""
    first: dict[str, Any] = {}
    tries: list[dict[str, Any]] = []
    for rate in shares_of(found, resolution):
        figures = await hold(kube, send, rate, seconds, meter, bound_ms)
        await settle()
        first = first or figures
        tries.append(
            {
                "offered_per_s": rate,
                "durable_per_s": figures["held_durable_per_s"],
                "durable_p99_ms": figures["held_durable_p99_ms"],
                "p99_ms": figures["held_p99_ms"],
                "errors": figures["held_errors"],
                "held": figures["held"],
                "watch_cache_events_after": figures.get("watch_cache_events_after"),
                "apiserver_heap_mib_after": figures.get("apiserver_heap_mib_after"),
            }
        )
        if figures["held"]:
            break
    holding = tries[-1] if tries[-1]["held"] else None  # the loop stops at the one that held
    return {
        **first,
        "hold_tries": tries,
        "holds_at_per_s": holding["offered_per_s"] if holding else None,
        "holds_at_durable_per_s": holding["durable_per_s"] if holding else None,
        "holds_at_durable_p99_ms": holding["durable_p99_ms"] if holding else None,
    }
