"""B4's hold: the rate the search found, sent for longer and judged on its end."""

from __future__ import annotations

import os

from pytest_mock import MockerFixture

from opscore_testbed.bench.cpu import CpuMeter
from opscore_testbed.bench.holding import (
    Sent,
    hold,
    judged,
    parse_gauges,
    verdict,
    window_p99s,
)

METRICS = """\
# HELP watch_cache_capacity [ALPHA] Total capacity of watch cache broken by resource type.
# TYPE watch_cache_capacity gauge
watch_cache_capacity{group="",resource="pods"} 100
watch_cache_capacity{group="opscore.opspawn.io",resource="agents"} 12800
watch_cache_capacity{group="opscore.opspawn.io",resource="workflows"} 100
go_memstats_heap_inuse_bytes 5.24288e+08
go_memstats_heap_objects 4.4e+06
"""


def test_the_agent_watch_cache_and_the_heap_are_read_from_the_metrics_text() -> None:
    assert parse_gauges(METRICS) == {"watch_cache_events": 12800.0, "apiserver_heap_mib": 500.0}


def test_a_gauge_the_api_server_does_not_export_is_left_out() -> None:
    assert parse_gauges("go_memstats_heap_inuse_bytes 1048576\n") == {"apiserver_heap_mib": 1.0}


def test_each_window_has_the_p99_of_its_durable_answers_alone() -> None:
    # 10/s for 3 s in 1 s windows: the second window's durable reports are slow, its
    # heartbeats are not, and a failed durable report is no latency at all.
    sent: list[Sent] = []
    for window, slow in enumerate((0.01, 0.5, 0.02)):
        for i in range(10):
            durable = i % 2 == 1
            code = 0 if window == 2 and i == 9 else 202
            sent.append((slow if durable else 0.001, code, "idle" if durable else "active"))
    assert window_p99s(sent, rate=10, window_s=1) == [10.0, 500.0, 20.0]


def test_only_the_end_of_the_hold_is_judged() -> None:
    sent: list[Sent] = [(float(i), 202, "idle") for i in range(9)]
    assert judged(sent) == sent[6:]


def test_a_hold_that_drifts_past_the_bound_at_its_end_did_not_hold() -> None:
    # Fast for its first two thirds, slow at the end: what a growing API server does.
    fast: list[Sent] = [(0.01, 202, "idle")] * 200
    slow: list[Sent] = [(0.3, 202, "idle")] * 100
    figures = verdict(fast + slow, bound_ms=100)
    assert figures["held_durable_p99_ms"] == 300.0
    assert figures["held"] is False
    assert verdict(slow + fast, bound_ms=100)["held"] is True


def test_an_error_at_the_end_fails_the_hold_whatever_the_latency() -> None:
    sent: list[Sent] = [(0.01, 202, "idle")] * 299 + [(0.0, 0, "active")]
    figures = verdict(sent, bound_ms=100)
    assert figures["held_errors"] == 1
    assert figures["held"] is False


async def test_the_hold_sends_the_rate_and_reports_the_api_server_before_and_after(
    mocker: MockerFixture,
) -> None:
    kube = mocker.Mock()
    kube.raw_get = mocker.AsyncMock(
        side_effect=[
            "go_memstats_heap_inuse_bytes 1048576\n",
            "go_memstats_heap_inuse_bytes 3145728\n",
        ]
    )
    asked: list[tuple[float, float]] = []

    async def send(rate: float, seconds: float) -> list[Sent]:
        asked.append((rate, seconds))
        return [(0.02, 202, "idle"), (0.001, 202, "active")] * 15

    row = await hold(kube, send, 10, 0.3, CpuMeter({"bench": os.getpid()}), 100)
    assert asked == [(10, 0.3)]
    assert row["held"] is True
    assert row["held_offered_per_s"] == 10
    assert row["apiserver_heap_mib_before"] == 1.0
    assert row["apiserver_heap_mib_after"] == 3.0
    assert set(row["held_cores"]) == {"bench"}
    assert row["held_window_durable_p99_ms"] == [20.0]
