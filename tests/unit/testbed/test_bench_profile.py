"""The operator profile's summary: self and total time per function and package, scaled
to the operator's measured CPU by sample share."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from opscore_testbed.bench.profile import markdown, summarise
from opscore_testbed.bench.report import profiles

RAW = "\n".join(
    [
        "main (opscore_operator/__main__.py:22);reconcile (opscore_operator/engine.py:10);"
        "dumps (json/encoder.py:200) 30",
        "main (opscore_operator/__main__.py:22);reconcile (opscore_operator/engine.py:12) 10",
        "main (opscore_operator/__main__.py:22);_writelines (aiohttp/http_writer.py:90) 60",
    ]
)


def test_self_and_total_time_are_shares_of_the_measured_cpu() -> None:
    profile = summarise(RAW, cpu_ms_per_step=10.0)
    by_name = {c.function: c for c in profile.functions}
    assert by_name["_writelines (http_writer.py)"].self_ms_per_step == 6.0
    assert by_name["dumps (encoder.py)"].self_ms_per_step == 3.0
    reconcile = by_name["reconcile (engine.py)"]
    assert (reconcile.self_ms_per_step, reconcile.total_ms_per_step) == (1.0, 4.0)


def test_self_time_is_summed_by_package() -> None:
    packages = {
        c.function: c.self_ms_per_step for c in summarise(RAW, cpu_ms_per_step=10.0).packages
    }
    assert packages == {"aiohttp": 6.0, "json": 3.0, "opscore_operator": 1.0}


def test_opscore_functions_are_listed_by_total_time() -> None:
    names = [c.function for c in summarise(RAW, cpu_ms_per_step=10.0).opscore_functions]
    assert names[0] == "main (__main__.py)"
    assert "reconcile (engine.py)" in names
    assert "dumps (encoder.py)" not in names


def test_an_empty_profile_is_an_error_not_a_table_of_zeros() -> None:
    with pytest.raises(ValueError, match="no samples"):
        summarise("", cpu_ms_per_step=1.0)


def test_the_markdown_has_the_three_tables() -> None:
    text = markdown(summarise(RAW, cpu_ms_per_step=10.0), title="B1", measured="`cmd`, today")
    assert text.splitlines()[2] == "`cmd`, today"
    assert text.count("## ") == 3
    assert "| `aiohttp` | 6.0 |" in text


def test_the_written_profile_says_when_where_and_by_which_command(tmp_path: Path) -> None:
    summary = dataclasses.asdict(summarise(RAW, cpu_ms_per_step=10.0))
    meta = {
        "command": "python -m opscore_testbed.bench --profile",
        "started": "2026-12-07T23:00:00Z",
        "machine": {"cpus": 2, "cpu_model": "AMD EPYC", "memory_gib": 23.5, "python": "3.11.7"},
        "cpu_steal_pct": 0.4,
    }
    rows: list[dict[str, Any]] = [
        {"scenario": "B1 drain 500x1-step", "profile_top": summary},
        {"scenario": "B3"},
    ]
    [path] = profiles(tmp_path / "latest.json", rows, meta)
    assert path.name == "latest-profile.md"
    header = path.read_text().splitlines()[2]
    for fact in ("--profile", "2026-12-07T23:00:00Z", "2 cores", "AMD EPYC", "23.5 GiB"):
        assert fact in header
