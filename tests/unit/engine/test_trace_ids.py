"""Trace and span ids derive from the run's uid and task ids alone: the same in every
process, never zero, a Kubernetes uid readable as the trace id."""

from __future__ import annotations

from opscore_logic.trace_ids import (
    attempt_span_id,
    parse_task_id,
    run_span_id,
    trace_id_for_run,
    trace_id_hex,
)

UID = "6f1c2a4e-9b7d-4c3e-8a21-0d5e6f7a8b9c"


def test_a_uuid_uid_is_the_trace_id_itself() -> None:
    assert trace_id_hex(UID) == UID.replace("-", "")


def test_a_uid_that_is_no_uuid_still_gives_a_valid_stable_trace_id() -> None:
    assert trace_id_for_run("uid-1") == trace_id_for_run("uid-1") != 0
    assert trace_id_for_run("0" * 32) != 0  # the all-zero id is invalid in W3C


def test_each_retry_round_has_its_own_root_span_id() -> None:
    assert run_span_id(UID) == run_span_id(UID, 0)
    assert run_span_id(UID, 1) != run_span_id(UID)


def test_attempt_span_ids_differ_per_task_id() -> None:
    assert attempt_span_id(f"{UID}:a:0:1") != attempt_span_id(f"{UID}:a:0:2")


def test_a_task_id_opscore_made_is_read_back_and_any_other_is_none() -> None:
    ref = parse_task_id(f"{UID}:collect:1:3")
    assert ref is not None
    assert (ref.uid, ref.step, ref.generation, ref.attempt) == (UID, "collect", 1, 3)
    assert parse_task_id("an agent's own id") is None
    assert parse_task_id(f"{UID}:collect:x:3") is None
