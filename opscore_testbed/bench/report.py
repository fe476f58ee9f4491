"""Printing and saving results: a table for people, JSON for tools, a PNG for the eye."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


#: Figures too long for a table line (they are in the JSON).
NOT_SHOWN = {"scenario", "steps", "levels", "spread", "raw_runs", "profile_top"}
_SKIP = NOT_SHOWN | {
    "api_writes_by_resource",
    "writes_by_writer",
    "live_writes_by_writer",
    "cold_writes_by_writer",
}


def table(rows: list[dict[str, Any]]) -> str:
    """One line per scenario: its name and its figures as key=value."""
    lines = ["| scenario | figures |", "| --- | --- |"]
    for row in rows:
        spread = row.get("spread") or {}
        figures = ", ".join(
            f"{k}={v}" + (f" [{spread[k][0]}-{spread[k][1]}]" if k in spread else "")
            for k, v in row.items()
            if k not in _SKIP and not (k == "problems" and not v)  # shown when there are some
        )
        lines.append(f"| {row['scenario']} | {figures} |")
    return "\n".join(lines)


def save(path: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "scenarios": rows}, indent=2) + "\n")


def chart(path: Path, series: dict[str, Any]) -> None:
    """Latency distributions (B3, B4) and completions over time (B1) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for key, values in sorted(series.items()):
        if key.startswith("b3_") and values:
            left.hist(
                values,
                bins=40,
                histtype="step",
                label=f"B3 step advance @{key.split('_')[1]} rep/s",
            )
    for key in sorted(k for k in series if k.startswith("b4_") and k.endswith("_ms")):
        values = series[key]
        if values:
            left.hist(
                values,
                bins=40,
                histtype="step",
                linestyle="--",
                label=f"B4 report @{key.split('_')[1]}/s",
            )
    left.set_xlabel("latency (ms)")
    left.set_ylabel("count")
    left.set_title("Latency distributions")
    left.legend(fontsize=8)
    for key in sorted(k for k in series if k.startswith("b1_")):
        values = series[key]
        right.plot(values, range(1, len(values) + 1), label=f"B1 {key.split('_')[1]}-step")
    right.set_xlabel("seconds since submission started")
    right.set_ylabel("workflows finished")
    right.set_title("Queued drain (throughput over time)")
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def profiles(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[Path]:
    """Write each row's operator profile (B1 with `--profile`) as Markdown tables next to
    `out` (`latest.json` -> `latest-profile.md`), headed by the run's date, machine and
    command from `meta`; the paths written."""
    from opscore_testbed.bench.profile import Cost, Profile, markdown

    written: list[Path] = []
    for row in rows:
        found = row.get("profile_top")
        if not found:
            continue
        profile = Profile(
            samples=found["samples"],
            cpu_ms_per_step=found["cpu_ms_per_step"],
            functions=[Cost(**c) for c in found["functions"]],
            opscore_functions=[Cost(**c) for c in found["opscore_functions"]],
            packages=[Cost(**c) for c in found["packages"]],
        )
        path = out.with_name(out.stem + "-profile.md")
        machine = meta["machine"]
        measured = (
            f"`{meta['command']}`, {meta['started']}, {machine['cpus']} cores "
            f'"{machine["cpu_model"]}", {machine["memory_gib"]} GiB, '
            f"Python {machine['python']}, steal {meta['cpu_steal_pct']} %."
        )
        path.write_text(
            markdown(
                profile,
                title=f"Where the operator's CPU goes: {row['scenario']}",
                measured=measured,
            )
        )
        written.append(path)
    return written
