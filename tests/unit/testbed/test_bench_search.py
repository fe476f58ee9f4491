"""B2's and B4's rate search: the edge to within the resolution, and an honest flag when
the edge lies above the range or the system does not reach it."""

from __future__ import annotations

import asyncio

import pytest

from opscore_testbed.bench.search import highest_passing_rate


def search(edge: float, low: float, high: float, resolution: float):  # type: ignore[no-untyped-def]
    tried: list[float] = []

    async def probe(rate: float) -> bool:
        tried.append(rate)
        return rate <= edge

    found = asyncio.run(highest_passing_rate(probe, low=low, high=high, resolution=resolution))
    return found, tried


def test_finds_the_edge_to_within_the_resolution() -> None:
    found, _ = search(edge=437, low=25, high=800, resolution=25)
    assert found.best is not None
    assert 437 - 25 < found.best <= 437
    assert not found.capped


def test_takes_a_logarithmic_number_of_probes() -> None:
    _, tried = search(edge=437, low=25, high=800, resolution=25)
    assert len(tried) <= 6 + 4  # 25 doubled up to 800: 6; then log2(400 / 25) = 4 bisections


def test_never_probes_more_than_twice_the_last_passing_rate() -> None:
    found, _ = search(edge=60, low=25, high=800, resolution=5)
    passed = [rate for rate, ok in found.probes if ok]
    assert max(rate for rate, _ in found.probes) <= 2 * max(passed)


def test_says_capped_when_even_the_highest_rate_passes() -> None:
    found, tried = search(edge=10_000, low=25, high=800, resolution=25)
    assert found.best == 800
    assert found.capped
    assert tried == [25, 50, 100, 200, 400, 800]


def test_reports_no_rate_when_even_the_lowest_fails() -> None:
    found, tried = search(edge=10, low=25, high=800, resolution=25)
    assert found.best is None
    assert not found.capped
    assert tried == [25]


def test_records_every_probe_with_its_outcome() -> None:
    found, _ = search(edge=30, low=10, high=50, resolution=10)
    assert found.probes == [(10, True), (20, True), (40, False), (30, True)]


def test_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError, match="low < high"):
        search(edge=1, low=50, high=50, resolution=1)
