"""B4's hold: the rate the search found, sent for longer and judged on its end."""

from __future__ import annotations

import os
from typing import Any

from pytest_mock import MockerFixture

from opscore_testbed.bench.cpu import CpuMeter
from opscore_testbed.bench.holding import (
    Sent,
    hold,
    hold_down,
    judged,
    parse_gauges,
    shares_of,
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
    figures = verdict(fast + slow, bound_ms=100, seconds=3)
    assert figures["held_durable_p99_ms"] == 300.0
    assert figures["held_durable_per_s"] == 100.0  # the judged third: 100 reports in 1 s
    assert figures["held"] is False
    assert verdict(slow + fast, bound_ms=100, seconds=3)["held"] is True


def test_an_error_at_the_end_fails_the_hold_whatever_the_latency() -> None:
    sent: list[Sent] = [(0.01, 202, "idle")] * 299 + [(0.0, 0, "active")]
    figures = verdict(sent, bound_ms=100, seconds=3)
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


def test_the_lower_rates_tried_are_shares_of_the_found_one_on_the_search_grid() -> None:
    assert shares_of(400, 25) == [400, 300, 200]
    # Rounded to the grid, never below one step of it, and never the same rate twice.
    assert shares_of(25, 25) == [25]
    assert shares_of(50, 25) == [50, 25]


class Fleet:
    """A sender whose durable reports take 300 ms above `slow_above` reports/s, and
    what it was asked: the rates sent, and after how many sends each settle came."""

    def __init__(self, slow_above: float) -> None:
        self.slow_above = slow_above
        self.asked: list[float] = []
        self.settled: list[int] = []

    async def send(self, rate: float, seconds: float) -> list[Sent]:
        self.asked.append(rate)
        latency = 0.3 if rate > self.slow_above else 0.02
        return [(latency, 202, "idle"), (0.001, 202, "active")] * 15

    async def settle(self) -> None:
        self.settled.append(len(self.asked))


def _kube(mocker: MockerFixture) -> Any:
    """A kube whose metrics never change."""
    kube = mocker.Mock()
    kube.raw_get = mocker.AsyncMock(return_value="go_memstats_heap_inuse_bytes 1048576\n")
    return kube


async def _hold_down(mocker: MockerFixture, fleet: Fleet) -> dict[str, Any]:
    meter = CpuMeter({"bench": os.getpid()})
    return await hold_down(_kube(mocker), fleet.send, 400, 25, 0.03, meter, 100, fleet.settle)


async def test_a_rate_that_does_not_hold_is_followed_by_lower_ones_until_one_does(
    mocker: MockerFixture,
) -> None:
    fleet = Fleet(slow_above=300)
    row = await _hold_down(mocker, fleet)
    assert fleet.asked == [400, 300]
    assert fleet.settled == [1, 2]  # the API server settles after every hold
    assert row["held_offered_per_s"] == 400  # the first hold's figures are the found rate's
    assert row["held"] is False
    assert [t["held"] for t in row["hold_tries"]] == [False, True]
    assert row["holds_at_per_s"] == 300
    assert row["holds_at_durable_p99_ms"] == 20.0


async def test_when_no_rate_holds_none_is_reported_not_the_lowest_tried(
    mocker: MockerFixture,
) -> None:
    fleet = Fleet(slow_above=0)
    row = await _hold_down(mocker, fleet)
    assert fleet.asked == [400, 300, 200]
    assert row["holds_at_per_s"] is None
    assert row["holds_at_durable_per_s"] is None


async def test_a_found_rate_that_holds_is_the_only_one_tried(mocker: MockerFixture) -> None:
    fleet = Fleet(slow_above=1000)
    row = await _hold_down(mocker, fleet)
    assert fleet.asked == [400]
    assert row["holds_at_per_s"] == 400
