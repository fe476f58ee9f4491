"""A run as viewers show it: steps in dependency order, effective dependencies, status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opscore_logic.base import parse_time
from opscore_logic.run_view import StepRow, step_rows, template_name

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def workflow(
    steps: list[dict[str, Any]] | None,
    status_steps: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "wf"}, "spec": dict(spec)}
    if steps is not None:
        body["spec"]["steps"] = steps
    if status_steps is not None:
        body["status"] = {"steps": status_steps}
    return body


def test_unset_depends_on_means_after_the_previous_step_as_the_engine_reads_it() -> None:
    rows = step_rows(workflow([{"name": "a"}, {"name": "b"}, {"name": "c", "dependsOn": []}]))
    assert [(r.name, r.depends_on) for r in rows] == [("a", ()), ("b", ("a",)), ("c", ())]


def test_rows_come_in_dependency_order_whatever_the_list_order() -> None:
    steps = [{"name": "report", "dependsOn": ["fetch"]}, {"name": "fetch", "dependsOn": []}]
    assert [r.name for r in step_rows(workflow(steps))] == ["fetch", "report"]


def test_status_fills_in_phase_agent_attempt_and_times() -> None:
    entry = {
        "name": "a",
        "phase": "Succeeded",
        "agent": "agent-1",
        "attempt": 2,
        "startedAt": "2026-11-25T09:00:00Z",
        "finishedAt": "2026-11-25T09:00:02.500000Z",
        "message": "done",
    }
    [a, b] = step_rows(workflow([{"name": "a"}, {"name": "b"}], [entry]))
    assert (a.phase, a.agent, a.attempt, a.message) == ("Succeeded", "agent-1", 2, "done")
    assert a.duration_seconds(T0) == 2.5
    assert (b.phase, b.agent, b.attempt, b.duration_seconds(T0)) == ("Pending", None, 0, None)


def test_a_running_step_lasts_until_now() -> None:
    row = StepRow(name="a", depends_on=(), phase="Running", started_at=T0)
    assert row.duration_seconds(parse_time("2026-11-25T09:00:07Z") or T0) == 7.0


def test_template_steps_are_used_for_a_template_ref() -> None:
    wf = workflow(None, templateRef={"name": "report"})
    template = {"spec": {"steps": [{"name": "x"}, {"name": "y"}]}}
    assert template_name(wf) == "report"
    assert [(r.name, r.depends_on) for r in step_rows(wf, template)] == [("x", ()), ("y", ("x",))]


def test_without_the_template_the_status_still_names_the_steps() -> None:
    wf = workflow(None, [{"name": "x", "phase": "Succeeded"}], templateRef={"name": "gone"})
    assert [(r.name, r.phase, r.depends_on) for r in step_rows(wf)] == [("x", "Succeeded", ())]


def test_a_cycle_does_not_lose_steps() -> None:
    steps = [{"name": "a", "dependsOn": ["b"]}, {"name": "b", "dependsOn": ["a"]}]
    assert sorted(r.name for r in step_rows(workflow(steps))) == ["a", "b"]


def test_unreadable_times_are_none() -> None:
    assert parse_time("yesterday") is None
    assert parse_time(None) is None
    assert parse_time("2026-11-25T09:00:00Z") == T0
