"""Latency histograms read from /metrics: one series picked out of many, the window's
observations by subtraction, and the share above a bound."""

from __future__ import annotations

import pytest
from pytest_mock import MockerFixture

from opscore_testbed.bench.apimetrics import (
    apiserver_latency,
    histogram_delta,
    parse_histogram,
    share_over,
)

FAMILY = "apiserver_request_duration_seconds"


def _series(labels: str, counts: list[int]) -> list[str]:
    bounds = ["0.025", "0.05", "0.1", "+Inf"]
    lines = [
        f'{FAMILY}_bucket{{{labels},le="{b}"}} {c}' for b, c in zip(bounds, counts, strict=True)
    ]
    return [*lines, f"{FAMILY}_count{{{labels}}} {counts[-1]}", f"{FAMILY}_sum{{{labels}}} 1.0"]


METRICS = "\n".join(
    [
        f"# HELP {FAMILY} Response latency.",
        f"# TYPE {FAMILY} histogram",
        *_series(
            'verb="PATCH",resource="agents",subresource="status",code="200"', [80, 90, 98, 100]
        ),
        *_series(
            'verb="PATCH",resource="agents",subresource="status",code="409"', [10, 10, 10, 10]
        ),
        *_series('verb="PATCH",resource="workflows",subresource="status",code="200"', [1, 1, 1, 7]),
        *_series('verb="GET",resource="agents",subresource="status",code="200"', [5, 5, 5, 5]),
        "",
    ]
)

AGENT_STATUS = {"verb": "PATCH", "resource": "agents", "subresource": "status"}


def test_the_series_of_one_verb_and_resource_are_summed_over_codes() -> None:
    buckets = parse_histogram(METRICS, FAMILY, AGENT_STATUS)
    assert buckets == {0.025: 90, 0.05: 100, 0.1: 108, float("inf"): 110}


def test_a_window_is_the_difference_of_two_readings_and_its_tail_a_share() -> None:
    after = parse_histogram(METRICS, FAMILY, AGENT_STATUS)
    before = {0.025: 50.0, 0.05: 55.0, 0.1: 58.0, float("inf"): 60.0}
    window = histogram_delta(after, before)
    assert window == {0.025: 40, 0.05: 45, 0.1: 50, float("inf"): 50}
    assert share_over(window, 0.025) == pytest.approx(1 - 40 / 50)
    assert share_over(window, 0.05) == pytest.approx(1 - 45 / 50)
    assert share_over(window, 0.1) == 0.0
    assert share_over(
        parse_histogram(METRICS, FAMILY, {"resource": "workflows"}), 0.1
    ) == pytest.approx(6 / 7)


def test_no_observations_is_no_tail() -> None:
    assert share_over({}, 0.1) == 0.0
    assert parse_histogram(METRICS, "no_such_family", {}) == {}


async def test_the_api_servers_latency_is_read_for_one_verb_and_subresource(
    mocker: MockerFixture,
) -> None:
    kube = mocker.Mock()
    kube.raw_get = mocker.AsyncMock(return_value=METRICS)
    buckets = await apiserver_latency(kube, verb="PATCH", resource="agents/status")
    kube.raw_get.assert_awaited_once_with("/metrics")
    assert buckets == {0.025: 90, 0.05: 100, 0.1: 108, float("inf"): 110}
