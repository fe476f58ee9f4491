"""Traces that survive a restart: a DAG workflow runs with both processes exporting to a
real Jaeger, the operator is SIGKILLed in the middle (alone, or as the leader of two
replicas: a leader change), and Jaeger's query API holds one
trace for the run (its id: the run's uid) with the run's `invoke_workflow` span at the
root, every step attempt an `invoke_agent` span under it, spans from the operator before
and after the kill among them, each POST to AgentKit under its attempt, and the agents'
reports (they name their task ids) as the sidecar's spans under their attempts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import (
    agents_ready,
    apply,
    get_workflow,
    sim_received,
    step,
    steps_of,
    wait_finished,
    workflow,
)

from opscore_logic.trace_ids import attempt_span_id, trace_id_hex
from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.jaeger import FoundSpan, Jaeger
from opscore_testbed.processes import wait_until
from opscore_testbed.replicas import LeaseTimes, OperatorReplicas
from opscore_testbed.stack import OpsCoreStack, StackOptions

LEASE = LeaseTimes(lease=4.0, renew_deadline=3.0, retry=0.5)
DAG = (
    step("collect", capabilities=["work"]),
    step("analyse-cost", capabilities=["work"], dependsOn=["collect"]),
    step("analyse-risk", capabilities=["work"], dependsOn=["collect"]),
    step("summarise", capabilities=["work"], dependsOn=["analyse-cost", "analyse-risk"]),
)


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    with Jaeger(work_dir=tmp_path / "jaeger") as running:
        yield running


@pytest.fixture
def stack_options(jaeger: Jaeger) -> StackOptions:
    return StackOptions(
        agents=("alpha:work", "beta:work", "gamma:work"),
        # Long enough that no attempt ends in the moment of the kill (what the killed
        # process had queued but not exported would be lost: docs/observability.md).
        task_seconds=2.0,
        agent_mode="correlated",
        operator_env={**jaeger.exporter_env(), "OPSCORE_DEFAULT_STEP_TIMEOUT_SECONDS": "15"},
        sidecar_env=jaeger.exporter_env(),
    )


def _attempt_spans(spans: list[FoundSpan]) -> dict[str, FoundSpan]:
    return {s.tags["opscore.task_id"]: s for s in spans if s.name.startswith("invoke_agent ")}


def _task_ids(wf: dict[str, Any], uid: str) -> set[str]:
    """Every attempt the run's status records: attempts 1..n of each step."""
    generation = int(wf["status"].get("retryGeneration", 0))
    return {
        f"{uid}:{name}:{generation}:{n}"
        for name, entry in steps_of(wf).items()
        for n in range(1, int(entry.get("attempt", 0)) + 1)
    }


def _fanned_out(stack: OpsCoreStack) -> bool:
    phases = {n: e["phase"] for n, e in steps_of(get_workflow(stack, "traced")).items()}
    return phases["collect"] == "Succeeded" and "Running" in (
        phases["analyse-cost"],
        phases["analyse-risk"],
    )


def _instances_once_collect_is_exported(jaeger: Jaeger, trace_id: str) -> set[str]:
    """The processes whose spans Jaeger holds once collect's attempt span is in."""

    def collect_exported() -> bool:
        spans = _attempt_spans(jaeger.trace(trace_id)).values()
        return any(s.tags.get("opscore.step") == "collect" for s in spans)

    wait_until(collect_exported, timeout=10, interval=0.05, what="collect's span in Jaeger")
    return {str(s.process_tags.get("service.instance.id")) for s in jaeger.trace(trace_id)}


def _assert_one_whole_trace(
    stack: OpsCoreStack, jaeger: Jaeger, *, uid: str, before_kill: set[str]
) -> None:
    """The finished run is one trace: its root, every attempt under it, spans of the
    killed operator and of its successor, each POST and each report under an attempt."""
    wf = wait_finished(stack, "traced", timeout=120)
    assert kv.phase(wf) == "Succeeded"
    trace_id = trace_id_hex(uid)
    expected = _task_ids(wf, uid)

    def whole() -> bool:
        spans = jaeger.trace(trace_id)
        return expected <= set(_attempt_spans(spans)) and any(
            s.parent_span_id is None for s in spans
        )

    wait_until(whole, timeout=30, interval=0.2, what="the run's root and every attempt in Jaeger")
    spans = jaeger.trace(trace_id)
    (root,) = [s for s in spans if s.parent_span_id is None]
    assert (root.name, root.service) == ("invoke_workflow traced", "opscore-operator")
    assert root.tags["gen_ai.operation.name"] == "invoke_workflow"
    attempts = _attempt_spans(spans)
    assert set(attempts) == expected
    assert {s.parent_span_id for s in attempts.values()} == {root.span_id}
    assert {s.span_id for s in attempts.values()} == {
        f"{attempt_span_id(task):016x}" for task in expected
    }
    operators = {
        str(s.process_tags.get("service.instance.id"))
        for s in spans
        if s.service == "opscore-operator"
    }
    # the killed operator's spans and its successor's, in the one trace
    assert before_kill & operators
    assert operators - before_kill

    attempt_ids = {s.span_id for s in attempts.values()}
    posts = [s for s in spans if s.name == "POST /v1/agents/{agentId}/run"]
    assert posts
    assert {s.parent_span_id for s in posts} <= attempt_ids
    reports = [s for s in spans if s.service == "opscore-sidecar"]
    assert reports
    assert {s.parent_span_id for s in reports} <= attempt_ids
    succeeded = [s for s in attempts.values() if s.tags["opscore.outcome"] == "succeeded"]
    assert all("state_report" in s.events for s in succeeded)


def test_a_run_killed_mid_dag_is_one_trace_with_every_attempt_under_its_root(
    stack: OpsCoreStack, jaeger: Jaeger
) -> None:
    agents_ready(stack, ("alpha", "beta", "gamma"))
    apply(stack, workflow("traced", *DAG))
    wait_until(lambda: _fanned_out(stack), timeout=60, interval=0.1, what="the analyses running")
    uid = get_workflow(stack, "traced")["metadata"]["uid"]
    before_kill = _instances_once_collect_is_exported(jaeger, trace_id_hex(uid))
    stack.restart_operator(kill=True)
    _assert_one_whole_trace(stack, jaeger, uid=uid, before_kill=before_kill)


def test_a_leader_change_mid_dag_keeps_the_run_in_one_trace(
    crds: ControlPlane, namespace: str, tmp_path: Path, stack_options: StackOptions, jaeger: Jaeger
) -> None:
    stack = OpsCoreStack(crds, namespace, tmp_path / "logs", stack_options)
    replicas = OperatorReplicas(stack, count=2, times=LEASE)
    try:
        stack.start_sidecar()
        stack.start_sim()
        replicas.start()
        agents_ready(stack, ("alpha", "beta", "gamma"))
        leader = replicas.wait_for_leader()
        apply(stack, workflow("traced", *DAG))
        wait_until(
            lambda: _fanned_out(stack), timeout=60, interval=0.1, what="the analyses running"
        )
        uid = get_workflow(stack, "traced")["metadata"]["uid"]
        before_kill = _instances_once_collect_is_exported(jaeger, trace_id_hex(uid))
        replicas.sigkill(leader)
        replicas.wait_for_leader(other_than=leader, timeout=LEASE.lease * 3)
        _assert_one_whole_trace(stack, jaeger, uid=uid, before_kill=before_kill)
    finally:
        replicas.stop()
        stack.stop()


def test_the_dispatched_message_carries_the_attempts_traceparent_in_its_payload(
    stack: OpsCoreStack, jaeger: Jaeger
) -> None:
    agents_ready(stack, ("alpha", "beta", "gamma"))
    apply(stack, workflow("carried", step("only", capabilities=["work"])))
    wf = wait_finished(stack, "carried", timeout=60)
    uid = wf["metadata"]["uid"]
    (message,) = [m for m in sim_received(stack) if m["opscore_session_id"] == uid]
    task_id = message["opscore_task_id"]
    assert message["payload"]["traceparent"] == (
        f"00-{trace_id_hex(uid)}-{attempt_span_id(task_id):016x}-01"
    )
