"""The operator's metrics and log lines that are not tied to a running cluster: workflows
by phase, the start of a step advance, the JSON log shape and LOG_LEVEL."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from opscore_logic.agent_model import AgentReport
from opscore_logic.engine import Decision, Release, WorkflowRef, reconcile
from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import Step, WorkflowSpec, WorkflowStatus
from opscore_operator import metrics
from opscore_operator.logs import OperatorJsonFormatter, configure_logging, kopf_verbosity
from opscore_operator.settings import OperatorSettings
from opscore_operator.store import ObjectCache
from opscore_operator.workflow_reconciler import _advanced_from

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


# -- workflows by phase ---------------------------------------------------------------------


def _workflow(name: str, phase: str | None) -> dict[str, object]:
    status = {"phase": phase} if phase else {}
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "1"}, "status": status}


def _phases() -> dict[str, float]:
    return {
        phase: REGISTRY.get_sample_value("opscore_workflows", {"phase": phase}) or 0.0
        for phase in ("Pending", "Running", "Suspended", "Succeeded", "Failed", "Cancelled")
    } | {"Unknown": REGISTRY.get_sample_value("opscore_workflows", {"phase": "Unknown"}) or 0.0}


@pytest.fixture
def bound() -> Iterator[ObjectCache]:
    cache = ObjectCache()
    previous = metrics.WORKFLOW_PHASES.runtime
    metrics.WORKFLOW_PHASES.runtime = SimpleNamespace(workflows=cache)  # type: ignore[assignment]
    yield cache
    metrics.WORKFLOW_PHASES.runtime = previous


def test_workflows_are_counted_by_phase_at_scrape_time(bound: ObjectCache) -> None:
    for name, phase in [
        ("new", None),
        ("a", "Running"),
        ("b", "Running"),
        ("c", "Succeeded"),
        ("d", "Failed"),
        ("e", "Paused"),
    ]:
        bound.upsert(_workflow(name, phase))
    counts = _phases()
    assert counts == {
        "Pending": 1,
        "Running": 2,
        "Suspended": 0,
        "Succeeded": 1,
        "Failed": 1,
        "Cancelled": 0,
        "Unknown": 1,
    }
    bound.delete(_workflow("a", "Running") | {"metadata": {"namespace": "ns", "name": "a"}})
    assert _phases()["Running"] == 1, "computed on each scrape, never kept"


def test_every_phase_is_exported_before_any_workflow_exists(bound: ObjectCache) -> None:
    assert set(_phases().values()) == {0.0}


# -- step advance -----------------------------------------------------------------------------


def test_a_step_advance_starts_when_the_finishing_report_was_received() -> None:
    spec = WorkflowSpec(steps=[Step(name="one", agent="a"), Step(name="two", agent="a")])
    agent = AgentView(name="a", agent_id="id-a", ready=True, free_slots=1, reports=())
    ref = WorkflowRef(namespace="ns", name="wf", uid="uid")
    first = reconcile(
        ref=ref, spec=spec, status=WorkflowStatus(), steps=spec.steps, agents={"a": agent}, now=T0
    )
    received = T0 + timedelta(seconds=2)
    idle = AgentReport(
        state="idle", timestamp=T0 + timedelta(seconds=1), received_at=received, details={}
    )
    done = AgentView(name="a", agent_id="id-a", ready=True, free_slots=0, reports=(idle,))
    second = reconcile(
        ref=ref,
        spec=spec,
        status=first.status,
        steps=spec.steps,
        agents={"a": done},
        now=T0 + timedelta(seconds=3),
    )
    [release] = second.releases
    assert (release.step, release.result, release.reported_at) == ("one", "succeeded", received)
    assert [d.step for d in second.dispatches] == ["two"]
    assert _advanced_from(second) == received


def test_only_succeeded_steps_start_a_step_advance() -> None:
    decision = Decision(status=WorkflowStatus())
    decision.releases = [
        Release("a", "t1", "failed", "x", T0 + timedelta(seconds=5)),
        Release("a", "t2", "abandoned", "y"),
        Release("b", "t3", "succeeded", "z", T0),
        Release("c", "t4", "succeeded", "w", T0 + timedelta(seconds=1)),
    ]
    assert _advanced_from(decision) == T0 + timedelta(seconds=1), "the newest success"
    assert _advanced_from(Decision(status=WorkflowStatus())) is None


# -- logs -------------------------------------------------------------------------------------


def test_log_lines_are_json_with_level_name_and_the_ids_they_are_about() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OperatorJsonFormatter())
    logger = logging.getLogger("opscore.test-observability")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "dispatching task %s",
            "uid:step:0:1",
            extra={
                "workflow": "wf",
                "step": "step",
                "task_id": "uid:step:0:1",
                "k8s_ref": {"name": "wf", "namespace": "ns"},
                "k8s_skip": True,
            },
        )
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["level"] == "WARNING"
    assert line["name"] == "opscore.test-observability"
    assert line["message"] == "dispatching task uid:step:0:1"
    assert "timestamp" in line
    assert (line["workflow"], line["step"], line["task_id"]) == ("wf", "step", "uid:step:0:1")
    assert line["object"] == {"name": "wf", "namespace": "ns"}
    assert "k8s_skip" not in line
    assert "k8s_ref" not in line


def test_configure_logging_reformats_kopfs_handler_and_sets_the_level() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    kopf_handler = logging.StreamHandler(io.StringIO())
    root.handlers[:] = [kopf_handler]
    try:
        configure_logging("warning")
        assert isinstance(kopf_handler.formatter, OperatorJsonFormatter)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@pytest.mark.parametrize(
    ("level", "flags"),
    [("DEBUG", ["--verbose"]), ("info", []), ("WARNING", ["--quiet"]), ("ERROR", ["--quiet"])],
)
def test_log_level_maps_onto_kopfs_verbosity(level: str, flags: list[str]) -> None:
    assert kopf_verbosity(level) == flags


def test_log_level_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert OperatorSettings().log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match="unknown log level"):
        OperatorSettings()
