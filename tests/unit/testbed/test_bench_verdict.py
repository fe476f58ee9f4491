"""`make bench` fails when a scenario's workflows did not all finish or all succeed."""

from __future__ import annotations

from typing import Any, cast

from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.workload import CompletionWatcher


def watcher(**finished: str) -> CompletionWatcher:
    seen = CompletionWatcher(cast(BenchKube, None), "ns")
    for name, phase in finished.items():
        obj: dict[str, Any] = {"metadata": {"name": name}, "status": {"phase": phase}}
        seen._see(obj)
    return seen


def test_all_succeeded_is_no_problem() -> None:
    assert watcher(a="Succeeded", b="Succeeded").problems({"a", "b"}, within=60) == []


def test_a_workflow_not_finished_in_time_is_a_problem() -> None:
    found = watcher(a="Succeeded").problems({"a", "b"}, within=60)
    assert found == ["1 of 2 workflows not finished within 60s: ['b']"]


def test_a_workflow_that_failed_is_a_problem() -> None:
    found = watcher(a="Succeeded", b="Failed").problems({"a", "b"}, within=60)
    assert found == ["1 workflows did not succeed: b Failed"]
