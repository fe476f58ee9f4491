"""`kubectl opscore get`: the step tree and the run's header (pure rendering)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from opscore_cli.style import Style
from opscore_cli.tree import layout, pending_verbs, render_workflow, step_table
from opscore_logic.run_view import StepRow

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PLAIN = Style(color=False, unicode=True)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def row(name: str, *deps: str, phase: str = "Pending", **kw: Any) -> StepRow:
    return StepRow(name=name, depends_on=deps, phase=phase, **kw)


def shape(rows: list[StepRow], unicode: bool = True) -> list[str]:
    return [p.prefix + p.row.name for p in layout(rows, unicode=unicode)]


def test_a_chain_indents_each_step_under_the_one_before() -> None:
    assert shape([row("a"), row("b", "a"), row("c", "b")]) == ["a", "└─ b", "   └─ c"]


def test_a_fan_out_branches_and_a_join_hangs_under_its_latest_dependency() -> None:
    rows = [
        row("collect"),
        row("cost", "collect"),
        row("risk", "collect"),
        row("sum", "cost", "risk"),
    ]
    placed = layout(rows)
    assert [p.prefix + p.row.name for p in placed] == [
        "collect",
        "├─ cost",
        "└─ risk",
        "   └─ sum",
    ]
    assert placed[-1].also_after == ("cost",)


def test_independent_steps_are_roots_and_ascii_connectors_exist() -> None:
    rows = [row("a"), row("b"), row("c", "a")]
    assert shape(rows, unicode=False) == ["a", "`- c", "b"]


def test_every_step_appears_once_even_on_a_cycle_or_an_unknown_dependency() -> None:
    rows = [row("a", "b"), row("b", "a"), row("c", "nope")]
    assert sorted(p.row.name for p in layout(rows)) == ["a", "b", "c"]


def test_the_table_shows_phase_agent_resource_name_attempt_duration_and_message() -> None:
    rows = [
        row(
            "research",
            phase="Succeeded",
            agent="researcher",
            attempt=1,
            started_at=T0,
            finished_at=datetime(2026, 11, 25, 9, 0, 2, 100000, tzinfo=UTC),
            message="the agent reported the task done",
        ),
        row("draft", "research", phase="Running", agent="30aa55c3", attempt=2, started_at=T0),
    ]
    now = datetime(2026, 11, 25, 9, 0, 12, tzinfo=UTC)
    header, first, second = step_table(rows, now, PLAIN)
    assert header.split() == [
        "STEP",
        "PHASE",
        "AGENT",
        "ATTEMPT",
        "DURATION",
        "TOKENS",
        "COST",
        "MESSAGE",
    ]
    assert first.split()[:6] == ["✔", "research", "Succeeded", "researcher", "1", "2.1s"]
    assert first.endswith("the agent reported the task done")
    assert second.split()[:7] == ["└─", "●", "draft", "Running", "30aa55c3", "2", "12s"]
    assert not ANSI.search("\n".join([header, first, second]))


def test_colour_marks_phases_without_moving_columns() -> None:
    rows = [row("a", phase="Failed", message="boom"), row("b", "a", phase="Skipped")]
    plain = step_table(rows, T0, PLAIN)
    coloured = step_table(rows, T0, Style(color=True, unicode=True))
    assert "\x1b[31mFailed\x1b[0m" in coloured[1]
    assert [ANSI.sub("", line) for line in coloured] == plain


def test_a_terminal_width_cuts_only_the_message() -> None:
    rows = [row("a", phase="Failed", message="x" * 200)]
    [_, line] = step_table(rows, T0, PLAIN, width=80)
    assert len(line) <= 80
    assert line.endswith("…")
    assert "Failed" in line


def test_the_header_says_name_phase_progress_and_pending_verbs() -> None:
    wf = {
        "metadata": {
            "name": "hello",
            "namespace": "ns",
            "creationTimestamp": "2026-11-25T08:59:00Z",
        },
        "spec": {"suspend": True, "templateRef": {"name": "report"}},
        "status": {
            "phase": "Running",
            "progress": "1/3",
            "message": "running draft",
            "startTime": "2026-11-25T09:00:00Z",
        },
    }
    text = render_workflow(
        wf, [row("a", phase="Succeeded")], datetime(2026, 11, 25, 9, 1, tzinfo=UTC), PLAIN
    )
    fields = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in text.split("\n\n")[0].splitlines())
    )
    assert fields == {
        "Name": "hello",
        "Namespace": "ns",
        "Phase": "Running",
        "Progress": "1/3",
        "Message": "running draft",
        "Template": "report",
        "Created": "2m ago",
        "Duration": "60s",
        "Requested": "suspend",
    }


def test_pending_verbs_are_those_the_run_has_not_acted_on() -> None:
    assert pending_verbs({"spec": {"retryGeneration": 2}, "status": {"retryGeneration": 1}}) == [
        "retry"
    ]
    assert pending_verbs({"spec": {"cancel": True}, "status": {"phase": "Cancelled"}}) == []
    assert pending_verbs({"spec": {"suspend": True}, "status": {"phase": "Succeeded"}}) == []
    assert pending_verbs({"spec": {"suspend": True}, "status": {"phase": "Suspended"}}) == []
    assert pending_verbs({"spec": {"suspend": False}, "status": {"phase": "Suspended"}}) == [
        "resume"
    ]


def test_the_table_shows_each_steps_tokens_and_cost_and_a_dash_without_usage() -> None:
    usage = {"totalTokens": 1550, "cost": {"USD": 0.0042, "EUR": 0.5}}
    rows = [
        row("research", phase="Succeeded", agent="r", attempt=1, started_at=T0, usage=usage),
        row("draft", "research", phase="Running", agent="w", attempt=1, started_at=T0),
    ]
    now = datetime(2026, 11, 25, 9, 0, 12, tzinfo=UTC)
    _, first, second = step_table(rows, now, PLAIN)
    assert first.split()[6:11] == ["1550", "0.5", "EUR,", "0.0042", "USD"]
    assert second.split()[7:9] == ["-", "-"]


def test_get_shows_the_runs_trace_id_which_is_its_uid_without_dashes() -> None:
    uid = "6f1c2a4e-9b7d-4c3e-8a21-0d5e6f7a8b9c"
    wf = {"metadata": {"name": "hello", "namespace": "ns", "uid": uid}, "status": {}}
    text = render_workflow(wf, [], datetime(2026, 11, 25, 9, 1, tzinfo=UTC), PLAIN)
    assert "Trace:     6f1c2a4e9b7d4c3e8a210d5e6f7a8b9c" in text.splitlines()
