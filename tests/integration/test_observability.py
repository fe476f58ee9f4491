"""Both processes are measurable from outside: Prometheus /metrics on the operator
(OPSCORE_METRICS_PORT) and the sidecar, JSON log lines naming what they are about, and
LOG_LEVEL honoured by both. Real processes on a real API server, the example workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack, StackOptions

HELLO = REPO / "examples" / "hello-workflow.yaml"
AGENTS = ("researcher", "writer", "reviewer")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample at `url`, keyed by (name, sorted labels)."""
    text = httpx.get(url, timeout=10, trust_env=False).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # fails on any line that is not JSON


def run_hello(stack: OpsCoreStack) -> dict[str, Any]:
    def ready() -> bool:
        agents = [kv.agent_named(stack.cp, stack.namespace, n) for n in AGENTS]
        return all(a is not None and kv.is_ready(a) for a in agents)

    wait_until(ready, timeout=60, what="agents Ready")
    stack.cp.kubectl("apply", "-n", stack.namespace, "-f", str(HELLO))
    stack.cp.kubectl(
        "wait",
        "-n",
        stack.namespace,
        "workflow/hello",
        "--for=condition=Succeeded",
        "--timeout=60s",
        timeout=90,
    )
    workflow: dict[str, Any] = kv.get(stack.cp, "workflow", stack.namespace, "hello")
    return workflow


def test_metrics_and_logs_of_a_workflow_run(stack: OpsCoreStack) -> None:
    workflow = run_hello(stack)
    operator = scrape(f"http://127.0.0.1:{stack.operator_metrics_port}/metrics")

    # Step advance: three sequential steps are two advances (report -> next dispatch).
    assert value(operator, "opscore_step_advance_seconds_count") == 2
    assert (value(operator, "opscore_step_advance_seconds_sum") or 0) < 10
    assert value(operator, "opscore_workflows", phase="Succeeded") == 1
    assert value(operator, "opscore_workflows", phase="Running") == 0
    assert value(operator, "opscore_dispatches_total", result="scheduled") == 3
    assert value(operator, "opscore_dispatch_seconds_count") == 3
    assert value(operator, "opscore_workflow_reconciles_total", result="error") == 0
    # Every agent was reconciled, and none of those passes failed (the error series is
    # exported at 0 from the start, so a missing series fails here too).
    assert (value(operator, "opscore_agent_reconciles_total", result="ok") or 0) >= len(AGENTS)
    assert value(operator, "opscore_agent_reconciles_total", result="error") == 0
    assert total(operator, "opscore_kube_api_requests_total", verb="patch_status", code="200") >= 3

    sidecar = scrape(f"{stack.sidecar_url}/metrics")
    assert total(sidecar, "opscore_sidecar_reports_total", state="Idle", result="stored") >= 3
    assert value(sidecar, "opscore_sidecar_report_write_seconds_count")
    route = "/v1/opscore/agent/{agentId}/state"
    assert total(sidecar, "opscore_sidecar_http_responses_total", route=route, code="202") >= 6
    assert total(sidecar, "opscore_kube_api_requests_total", verb="patch_status", code="200") >= 1

    # Logs: one JSON object per line; dispatches and outcomes name their ids.
    assert stack.operator is not None
    stack.operator.stop()  # flush and close the log before reading it
    lines = json_lines(stack.log_dir / "operator.log")
    task_ids = {step["taskId"] for step in workflow["status"]["steps"]}
    dispatched = [line for line in lines if str(line["message"]).startswith("dispatching task")]
    assert {line["task_id"] for line in dispatched} == task_ids
    for line in dispatched:
        assert line["workflow"] == "hello"
        assert line["namespace"] == stack.namespace
        assert line["step"] in {"research", "draft", "review"}
        assert line["agent"]
        assert line["agent_id"]
        assert (line["level"], line["name"]) == ("INFO", "opscore.workflows")
        assert "timestamp" in line
    finished = [line for line in lines if line.get("result") == "succeeded"]
    assert {line["task_id"] for line in finished} == task_ids
    assert {line["step"] for line in finished} == {"research", "draft", "review"}

    sidecar_lines = json_lines(stack.log_dir / "sidecar.log")
    assert any(line.get("request_id") and line.get("agent_id") for line in sidecar_lines)
    assert all({"timestamp", "level", "name", "message"} <= line.keys() for line in sidecar_lines)


@pytest.fixture
def quiet_stack(crds: ControlPlane, namespace: str, tmp_path: Path) -> OpsCoreStack:
    options = StackOptions(
        agents=tuple(f"{name}:x" for name in AGENTS),
        operator_env={"LOG_LEVEL": "WARNING"},
        sidecar_env={"LOG_LEVEL": "WARNING"},
    )
    return OpsCoreStack(crds, namespace, tmp_path / "logs", options)


def test_log_level_warning_silences_info_on_both_processes(quiet_stack: OpsCoreStack) -> None:
    with quiet_stack as stack:
        workflow = run_hello(stack)
        assert workflow["status"]["phase"] == "Succeeded"
    for log in ("operator.log", "sidecar.log"):
        levels = {
            str(line.get("level") or line.get("severity")).upper()
            for line in json_lines(stack.log_dir / log)
        }
        assert levels <= {"WARNING", "WARN", "ERROR", "CRITICAL"}, (log, levels)
