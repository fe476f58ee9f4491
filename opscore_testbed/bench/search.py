"""Searching a rate instead of reading a ladder: the highest rate a probe passes.

A fixed ladder makes the result a rung (issue 20: B2's 1,800/min was the ladder's top, B4's
100/s the rung below a failure). The search gallops up from `low`, doubling the rate until a
probe fails (so no probe overloads the system far past its edge: an overload leaves a
backlog behind it and takes long to answer), then bisects between the last rate that passed
and the first that failed, to within `resolution`. A search whose `high` passes says so
(`capped`): the result is then a lower bound, not an edge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class SearchResult:
    best: float | None  # the highest rate that passed; None when even the lowest failed
    capped: bool  # the highest rate passed: the edge lies above the search range
    probes: list[tuple[float, bool]] = field(default_factory=list)  # (rate, passed) in order


async def highest_passing_rate(
    probe: Callable[[float], Awaitable[bool]],
    *,
    low: float,
    high: float,
    resolution: float,
) -> SearchResult:
    """The highest rate in [low, high] `probe` passes, assuming passing is monotone (a
    rate passes when every lower one does). Failing at `low` ends the search: the system
    does not reach the range."""
    if not 0 < low < high or resolution <= 0:
        raise ValueError(f"need 0 < low < high and resolution > 0, got {low}, {high}, {resolution}")
    result = SearchResult(best=None, capped=False)

    async def run(rate: float) -> bool:
        passed = await probe(rate)
        result.probes.append((rate, passed))
        return passed

    if not await run(low):
        return result
    passing, failing = low, None
    while failing is None:
        rate = min(passing * 2, high)
        if await run(rate):
            passing = rate
            if rate == high:
                result.best, result.capped = high, True
                return result
        else:
            failing = rate
    while failing - passing > resolution:
        middle = round((passing + failing) / 2 / resolution) * resolution
        if middle <= passing or middle >= failing:
            break
        if await run(middle):
            passing = middle
        else:
            failing = middle
    result.best = passing
    return result
