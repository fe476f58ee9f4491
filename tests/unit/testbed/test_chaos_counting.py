"""The fault suite's counting code: a bug that always yields 0 (or never reports a
problem) must fail here, not pass every chaos run silently."""

from __future__ import annotations

from typing import Any

from opscore_testbed.bench.apimetrics import WriteCounts, parse_write_counts
from opscore_testbed.chaos.tally import judge, predicted_duplicates, redispatched_steps, tally
from opscore_testbed.chaos.workload import FAILED, SUCCEEDED, Planned


def planned(name: str, *, doomed: bool = False) -> Planned:
    shape = "doomed" if doomed else "one-step"
    return Planned(name, shape, {}, FAILED if doomed else SUCCEEDED)


def final(phase: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"status": {"phase": phase, "steps": list(steps)}}


def task(workflow: str, step: str, task_id: str | None) -> dict[str, Any]:
    return {
        "opscore_task_id": task_id,
        "payload": {"workflow": f"ns/{workflow}", "step": step},
    }


def ledger(*tasks: dict[str, Any]) -> dict[str, Any]:
    by_id: dict[str, int] = {}
    for item in tasks:
        if isinstance(item["opscore_task_id"], str):
            by_id[item["opscore_task_id"]] = by_id.get(item["opscore_task_id"], 0) + 1
    return {"tasks": list(tasks), "by_task_id": by_id, "total": len(tasks)}


# -- judge ------------------------------------------------------------------------------


def test_judge_accepts_a_planned_success() -> None:
    assert judge(planned("a"), final(SUCCEEDED)) is None


def test_judge_names_a_success_that_failed() -> None:
    problem = judge(planned("a"), final(FAILED, {"phase": FAILED, "reason": "TimedOut"}))
    assert problem is not None
    assert problem.startswith("a: Failed")


def test_judge_accepts_a_doomed_workflow_failed_by_the_agent() -> None:
    body = final(FAILED, {"phase": FAILED, "reason": "TaskFailed"})
    assert judge(planned("d", doomed=True), body) is None


def test_judge_refuses_a_doomed_workflow_failed_for_another_reason() -> None:
    body = final(FAILED, {"phase": FAILED, "reason": "TimedOut"})
    problem = judge(planned("d", doomed=True), body)
    assert problem == "d: failed with step reasons ['TimedOut']"


def test_judge_accepts_the_reasons_a_scenario_explains() -> None:
    body = final(FAILED, {"phase": FAILED, "reason": "TimedOut"})
    assert judge(planned("d", doomed=True), body, frozenset({"TaskFailed", "TimedOut"})) is None


def test_judge_refuses_a_failed_workflow_without_a_failed_step() -> None:
    assert judge(planned("d", doomed=True), final(FAILED)) is not None


# -- tally ------------------------------------------------------------------------------


def test_tally_counts_phases_and_expected_failures() -> None:
    plan = [planned("a"), planned("b"), planned("d", doomed=True)]
    bodies = {
        "a": final(SUCCEEDED),
        "b": final(SUCCEEDED),
        "d": final(FAILED, {"phase": FAILED, "reason": "TaskFailed"}),
    }
    counted = tally(plan, bodies, ledger())
    figures = counted.figures()
    assert (figures["workflows"], figures["succeeded"], figures["failed"]) == (3, 2, 1)
    assert figures["failed_as_expected"] == 1
    assert (figures["lost"], figures["unexpected"]) == (0, 0)


def test_tally_counts_a_workflow_never_finished_as_lost() -> None:
    counted = tally([planned("a"), planned("gone")], {"a": final(SUCCEEDED)}, ledger())
    assert counted.lost == ["gone"]
    assert counted.figures()["lost"] == 1


def test_tally_counts_an_unplanned_outcome_as_unexpected() -> None:
    bodies = {"a": final(FAILED, {"phase": FAILED, "reason": "TimedOut"})}
    counted = tally([planned("a")], bodies, ledger())
    assert counted.figures()["unexpected"] == 1
    assert counted.failed == 1
    assert counted.failed_as_expected == 0


def test_tally_counts_every_extra_delivery_of_a_task_id_as_a_duplicate() -> None:
    tasks = ledger(
        task("a", "only", "u:only:0:1"),
        task("a", "only", "u:only:0:1"),
        task("a", "only", "u:only:0:1"),
        task("b", "only", "v:only:0:1"),
    )
    counted = tally([planned("a"), planned("b")], {"a": final(SUCCEEDED)}, tasks)
    assert counted.duplicated == {"u:only:0:1": 3}
    assert counted.figures()["duplicated"] == 2
    assert counted.tasks_received == 4


def test_tally_counts_redispatched_steps_from_the_ledger() -> None:
    tasks = ledger(task("a", "only", "u:only:0:1"), task("a", "only", "u:only:0:2"))
    counted = tally([planned("a")], {"a": final(SUCCEEDED)}, tasks)
    assert counted.figures()["redispatched_steps"] == 1


# -- redispatched_steps ----------------------------------------------------------------


def test_a_step_received_under_two_task_ids_is_redispatched() -> None:
    tasks = [task("a", "s1", "u:s1:0:1"), task("a", "s1", "u:s1:0:2"), task("a", "s2", "u:s2:0:1")]
    assert redispatched_steps(tasks, set()) == 1


def test_the_same_task_id_twice_is_a_duplicate_not_a_redispatch() -> None:
    tasks = [task("a", "s1", "u:s1:0:1"), task("a", "s1", "u:s1:0:1")]
    assert redispatched_steps(tasks, set()) == 0


def test_only_extra_deliveries_of_allowed_task_ids_are_predicted() -> None:
    duplicated = {"a": 2, "b": 3, "c": 2}
    assert predicted_duplicates(duplicated, {"a", "b", "z"}) == 3
    assert predicted_duplicates(duplicated, set()) == 0
    assert predicted_duplicates({}, {"a"}) == 0


def test_steps_of_the_same_name_in_two_workflows_are_counted_apart() -> None:
    tasks = [
        task("a", "s1", "u:s1:0:1"),
        task("a", "s1", "u:s1:0:2"),
        task("b", "s1", "v:s1:0:1"),
        task("b", "s1", "v:s1:0:2"),
    ]
    assert redispatched_steps(tasks, set()) == 2


def test_excluded_workflows_are_not_counted() -> None:
    tasks = [task("d", "only", "w:only:0:1"), task("d", "only", "w:only:0:2")]
    assert redispatched_steps(tasks, {"d"}) == 0


# -- write_counts ----------------------------------------------------------------------

METRICS = """\
# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",resource="workflows",subresource="",verb="POST"} 5
apiserver_request_total{code="200",resource="workflows",subresource="status",verb="PATCH"} 7
apiserver_request_total{code="409",resource="workflows",subresource="status",verb="PATCH"} 2
apiserver_request_total{code="200",resource="agents",subresource="status",verb="APPLY"} 3
apiserver_request_total{code="200",resource="workflows",subresource="",verb="LIST"} 40
apiserver_request_total{code="200",resource="workflows",subresource="",verb="WATCH"} 9
# HELP etcd_requests_total Unrelated.
# TYPE etcd_requests_total counter
etcd_requests_total{operation="create"} 100
"""


def test_write_counts_sum_write_verbs_by_resource_and_subresource() -> None:
    counts = parse_write_counts(METRICS)
    assert counts.by_resource == {"workflows": 5, "workflows/status": 9, "agents/status": 3}
    assert counts.total == 17


def test_write_counts_leave_reads_and_other_metrics_out() -> None:
    reads_only = "\n".join(line for line in METRICS.splitlines() if "POST" not in line)
    counts = parse_write_counts(reads_only.replace("PATCH", "GET").replace("APPLY", "GET"))
    assert counts.total == 0


def test_write_counts_difference_is_what_happened_between_two_readings() -> None:
    before = parse_write_counts(METRICS)
    after = parse_write_counts(METRICS.replace("} 5", "} 8"))
    diff = after - before
    assert diff.by_resource == {"workflows": 3}
    assert isinstance(diff, WriteCounts)


# -- against the simulator's ledger ---------------------------------------------------


def run(phase: str, *steps: tuple[str, int], uid: str = "u") -> dict[str, Any]:
    """A finished workflow whose steps made the given numbers of attempts."""
    entries = [
        {"name": name, "phase": phase, "attempt": attempts, "taskId": f"{uid}:{name}:0:{attempts}"}
        for name, attempts in steps
    ]
    return {"metadata": {"uid": uid}, "status": {"phase": phase, "steps": entries}}


def test_a_success_whose_final_task_no_agent_received_is_unconfirmed() -> None:
    tasks = ledger(task("a", "s1", "u:s1:0:1"))
    counted = tally([planned("a")], {"a": run(SUCCEEDED, ("s1", 1), ("s2", 1))}, tasks)
    assert counted.unconfirmed_successes == ["a: no delivery of ['s2']"]
    assert counted.figures()["unconfirmed_successes"] == 1


def test_a_success_whose_every_final_task_was_received_is_confirmed() -> None:
    tasks = ledger(task("a", "s1", "u:s1:0:1"), task("a", "s2", "u:s2:0:1"))
    counted = tally([planned("a")], {"a": run(SUCCEEDED, ("s1", 1), ("s2", 1))}, tasks)
    assert counted.unconfirmed_successes == []
    assert (counted.tasks_expected, counted.undelivered_attempts) == (2, 0)


def test_a_task_no_status_asked_for_is_unaccounted() -> None:
    tasks = ledger(task("a", "s1", "u:s1:0:1"), task("a", "s1", "u:s1:0:2"))
    counted = tally([planned("a")], {"a": run(SUCCEEDED, ("s1", 1))}, tasks)
    assert counted.unaccounted_tasks == ["u:s1:0:2"]


def test_a_task_of_another_workflow_uid_is_unaccounted() -> None:
    tasks = ledger(task("a", "s1", "u:s1:0:1"), task("a", "s1", "old:s1:0:1"))
    counted = tally([planned("a")], {"a": run(SUCCEEDED, ("s1", 1))}, tasks)
    assert counted.unaccounted_tasks == ["old:s1:0:1"]


def test_an_attempt_counted_in_status_but_never_received_is_undelivered() -> None:
    tasks = ledger(task("a", "s1", "u:s1:0:2"))
    counted = tally([planned("a")], {"a": run(SUCCEEDED, ("s1", 2))}, tasks)
    assert (counted.tasks_expected, counted.undelivered_attempts) == (2, 1)
    assert counted.unconfirmed_successes == []


def test_a_delivery_without_a_string_task_id_is_counted() -> None:
    tasks = ledger(task("a", "s1", "u:s1:0:1"), task("a", "s1", None))
    counted = tally([planned("a")], {"a": run(SUCCEEDED, ("s1", 1))}, tasks)
    assert counted.figures()["deliveries_without_task_id"] == 1


def test_tasks_of_a_lost_workflow_are_not_held_against_a_status() -> None:
    tasks = ledger(task("gone", "s1", "g:s1:0:1"))
    counted = tally([planned("gone")], {}, tasks)
    assert (counted.unaccounted_tasks, counted.tasks_expected) == ([], 0)
    assert counted.lost == ["gone"]
