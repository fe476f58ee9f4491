"""Repeated runs of one scenario, folded into one row: the median, and min-max beside it.

One run of a benchmark on a shared 2-core machine is an anecdote (issue 20): each headline
scenario runs `Sizes.repeats` times and its row reports the median of every numeric figure,
with `spread` holding [min, max] per figure and `runs` the raw rows, so a reader (and
`make bench-check`) sees how far to trust a difference. Non-numeric figures (lists of
steps, writes by resource) are taken from the run closest to the median of the first
figure that varies between runs; `problems` are the union over all runs (one failed run
fails the row). A figure only some runs measured (B4's `holds_at_*` is None in a run where
no rate held) is None in the row, never the median of the runs that happened to have it;
`partial` says how many runs had it. Likewise a yes/no figure (B4's `held`) the runs
disagree on is None, with `true_in` saying in how many runs it was true: the run nearest
the median of another figure must not answer for the others.
"""

from __future__ import annotations

import statistics
from typing import Any

Row = dict[str, Any]


def numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fold(runs: list[Row]) -> Row:
    """One row from several runs of the same scenario (a single run is returned as is,
    with `runs: 1`)."""
    if not runs:
        raise ValueError("fold needs at least one run")
    names = {run["scenario"] for run in runs}
    if len(names) != 1:
        raise ValueError(f"fold mixes scenarios: {sorted(names)}")
    if len(runs) == 1:
        return {**runs[0], "runs": 1}
    keys = list(dict.fromkeys(k for run in runs for k, v in run.items() if numeric(v)))
    # The first figure that varies picks the representative (a count every run shares,
    # like B1's `workflows`, would always pick the first run).
    varying = [k for k in keys if len({run.get(k) for run in runs}) > 1]
    representative = _closest_to_median(runs, varying[0]) if varying else runs[0]
    row: Row = dict(representative)
    spread: dict[str, list[float]] = {}
    partial: dict[str, int] = {}
    true_in: dict[str, int] = {}
    for key in dict.fromkeys(k for run in runs for k, v in run.items() if isinstance(v, bool)):
        said = [run.get(key) for run in runs]
        if len(set(said)) > 1:
            row[key] = None
            true_in[key] = sum(1 for value in said if value is True)
    for key in keys:
        values = [run[key] for run in runs if numeric(run.get(key))]
        if len(values) < len(runs):
            row[key] = None
            partial[key] = len(values)
            continue
        middle = statistics.median(values)
        row[key] = round(middle, 2) if isinstance(middle, float) else middle
        spread[key] = [min(values), max(values)]
    problems = [
        p
        for i, run in enumerate(runs)
        for p in (f"run {i + 1}: {q}" for q in run.get("problems") or [])
    ]
    row["problems"] = problems
    row["runs"] = len(runs)
    row["spread"] = spread
    if partial:
        row["partial"] = partial
    if true_in:
        row["true_in"] = true_in
    row["raw_runs"] = runs
    return row


def _closest_to_median(runs: list[Row], key: str) -> Row:
    values = [run[key] for run in runs if numeric(run.get(key))]
    if not values:
        return runs[0]
    middle = statistics.median(values)
    return min(runs, key=lambda run: abs(run[key] - middle) if numeric(run.get(key)) else 1e300)
