"""What an agent's reports say about a dispatched task, and what the step shows for it."""

from __future__ import annotations

from engine_harness import T0, agent, done, entry, once, report, seconds, spec, step

from opscore_logic.agent_model import AgentReport
from opscore_logic.engine import MAX_OUTPUT_BYTES, Decision
from opscore_logic.outcomes import Outcome, infer_outcome
from opscore_logic.workflow_model import StepPhase

TASK = "uid-1:s:0:1"
SENT = T0


def outcome(*reports: AgentReport, task_id: str = TASK) -> Outcome | None:
    return infer_outcome(reports, task_id=task_id, dispatched_at=SENT)


# -- exact correlation ---------------------------------------------------------------------


def test_a_report_carrying_the_task_id_settles_that_task() -> None:
    result = outcome(done(TASK, T0 + seconds(1), answer=42))
    assert result is not None
    assert result.succeeded
    assert result.output == {"answer": 42}


def test_a_report_for_another_task_id_says_nothing_about_this_one() -> None:
    assert outcome(done("uid-1:other:0:1", T0 + seconds(1))) is None


def test_a_correlated_active_report_means_still_running() -> None:
    assert outcome(report("active", T0 + seconds(1), opscore_task_id=TASK)) is None


def test_a_correlated_report_counts_even_if_received_before_the_recorded_dispatch() -> None:
    # Clocks differ between processes; the task id alone proves which task it is about.
    result = outcome(done(TASK, T0 - seconds(1)))
    assert result is not None
    assert result.succeeded


def test_correlated_reports_take_precedence_over_anonymous_ones() -> None:
    result = outcome(
        report("idle", T0 + seconds(2)),
        report("active", T0 + seconds(1), opscore_task_id=TASK),
    )
    assert result is None


def test_a_correlated_error_fails_the_task_with_code_and_message() -> None:
    result = outcome(
        report("error", T0 + seconds(1), opscore_task_id=TASK, error_code="E42", message="nope")
    )
    assert result is not None
    assert not result.succeeded
    assert result.message == "E42: nope"


# -- reference agents (no task id) ---------------------------------------------------------


def test_idle_after_dispatch_means_done() -> None:
    result = outcome(report("active", T0 + seconds(1)), report("idle", T0 + seconds(1.01)))
    assert result is not None
    assert result.succeeded
    assert result.output is None


def test_active_alone_means_still_running() -> None:
    assert outcome(report("active", T0 + seconds(1))) is None


def test_active_and_idle_received_out_of_order_are_ordered_by_timestamp() -> None:
    idle = report("idle", T0 + seconds(1.01), received=T0 + seconds(1.02))
    active = report("active", T0 + seconds(1), received=T0 + seconds(1.5))
    result = outcome(idle, active)
    assert result is not None
    assert result.succeeded


def test_a_newer_active_after_an_idle_means_running_again() -> None:
    assert outcome(report("idle", T0 + seconds(1)), report("active", T0 + seconds(2))) is None


def test_an_error_wins_over_a_later_idle() -> None:
    result = outcome(
        report("error", T0 + seconds(1), error_code="BOOM"), report("idle", T0 + seconds(2))
    )
    assert result is not None
    assert not result.succeeded
    assert result.message == "BOOM"


def test_an_error_without_details_names_the_reported_state() -> None:
    result = outcome(report("FAILED", T0 + seconds(1)))
    assert result is not None
    assert not result.succeeded
    assert result.message == "the agent reported 'FAILED'"


def test_reports_received_before_the_dispatch_are_ignored() -> None:
    assert outcome(report("idle", T0 - seconds(1))) is None
    assert outcome(report("error", T0 - seconds(1))) is None


def test_a_report_received_at_the_dispatch_moment_counts_as_before_it() -> None:
    # It was already in the status the dispatch decision read.
    assert outcome(report("idle", T0)) is None


def test_state_names_are_normalised_for_inference() -> None:
    result = outcome(report("BUSY", T0 + seconds(1)), report("Finished", T0 + seconds(2)))
    assert result is not None
    assert result.succeeded


def test_an_anonymous_output_is_taken_from_details() -> None:
    result = outcome(report("idle", T0 + seconds(1), output={"k": "v"}))
    assert result is not None
    assert result.output == {"k": "v"}


def test_an_output_that_is_not_an_object_is_ignored() -> None:
    result = outcome(
        done(TASK, T0 + seconds(1)).model_copy(
            update={"details": {"opscore_task_id": TASK, "output": "text"}}
        )
    )
    assert result is not None
    assert result.succeeded
    assert result.output is None


# -- in the engine -------------------------------------------------------------------------


def settle(*reports_after: AgentReport) -> Decision:
    """Dispatch step s to agent x at T0, then reconcile once x has sent these reports."""
    wf = spec(step("s", agent="x"))
    first = once(wf, agents=[agent("x")])
    return once(wf, first.status, [agent("x", *reports_after, free=0)], T0 + seconds(5))


def test_the_step_output_comes_from_details_output() -> None:
    d = settle(done("uid-1:s:0:1", T0 + seconds(1), rows=3))
    s = entry(d.status, "s")
    assert (s.phase, s.output, s.reason) == (StepPhase.SUCCEEDED, {"rows": 3}, "TaskSucceeded")


def test_an_output_over_the_size_cap_is_dropped_with_a_message() -> None:
    big = "x" * (MAX_OUTPUT_BYTES + 1)
    d = settle(done("uid-1:s:0:1", T0 + seconds(1), blob=big))
    s = entry(d.status, "s")
    assert s.phase is StepPhase.SUCCEEDED
    assert s.output == {"truncated": True, "bytes": len(big) + len('{"blob":""}')}
    assert f"exceeds {MAX_OUTPUT_BYTES} bytes" in (s.message or "")


def test_an_output_exactly_at_the_cap_is_kept() -> None:
    blob = "x" * (MAX_OUTPUT_BYTES - len('{"blob":""}'))
    d = settle(done("uid-1:s:0:1", T0 + seconds(1), blob=blob))
    assert entry(d.status, "s").output == {"blob": blob}


def test_a_failed_task_shows_the_agents_error_on_the_step() -> None:
    d = settle(report("error", T0 + seconds(1), error_code="DISK", message="full"))
    s = entry(d.status, "s")
    assert (s.phase, s.reason, s.message) == (StepPhase.FAILED, "TaskFailed", "DISK: full")
    assert [r.result for r in d.releases] == ["failed"]


def test_a_settled_task_is_released_as_succeeded() -> None:
    d = settle(report("idle", T0 + seconds(1)))
    assert [(r.agent, r.task_id, r.result) for r in d.releases] == [
        ("x", "uid-1:s:0:1", "succeeded")
    ]
