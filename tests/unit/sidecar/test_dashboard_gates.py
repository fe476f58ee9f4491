"""The dashboard's list of runs shows which wait for approval, and filters on it."""

from __future__ import annotations

from typing import Any

from opscore_sidecar.dashboard_data import workflow_page, workflow_summary


def run(name: str, *step_phases: str) -> dict[str, Any]:
    steps = [{"name": f"s{i}", "phase": p} for i, p in enumerate(step_phases)]
    return {
        "metadata": {"name": name, "creationTimestamp": "2026-12-03T06:00:00Z"},
        "spec": {"steps": [{"name": s["name"]} for s in steps]},
        "status": {"phase": "Running", "steps": steps},
    }


def test_a_run_summary_names_its_steps_waiting_for_approval() -> None:
    summary = workflow_summary(run("gated", "Succeeded", "WaitingForApproval"))
    assert summary["awaitingApproval"] == ["s1"]


def test_the_waiting_for_approval_filter_lists_only_runs_waiting_for_a_person() -> None:
    summaries = [
        workflow_summary(run("gated", "WaitingForApproval")),
        workflow_summary(run("busy", "Running")),
    ]
    page = workflow_page(summaries, phase="WaitingForApproval")
    assert [item["name"] for item in page["items"]] == ["gated"]
    assert page["phases"] == {"Running": 2, "WaitingForApproval": 1}


def test_no_waiting_count_when_no_run_waits() -> None:
    page = workflow_page([workflow_summary(run("busy", "Running"))])
    assert page["phases"] == {"Running": 1}
