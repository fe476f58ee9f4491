"""`make demo`: the whole of Ops-Core on a local control plane, in one command.

It starts etcd + kube-apiserver + kube-controller-manager, installs the CRDs, starts the
sidecar, the operator and an AgentKit simulator with three agents (they register through
AgentKit's webhook and report state like real AgentKit SDK agents), applies the example
workflows and shows `kubectl get agents,workflows` until every workflow has finished.
Ctrl-C stops everything it started. `--once` (DEMO_ONCE=1) exits by itself: 0 when every
example workflow succeeded, 1 otherwise. `--jaeger` (JAEGER=1) also runs the test bed's
Jaeger and both processes export traces to it; with `OTEL_EXPORTER_OTLP_ENDPOINT` set,
they export to that backend instead. Either way the demo ends by saying where each run's
trace is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from opscore_logic.trace_ids import trace_id_hex
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.jaeger import Jaeger
from opscore_testbed.stack import REPO, OpsCoreStack, StackOptions, install_crds

NAMESPACE = "opscore-demo"
EXAMPLES = REPO / "examples"
AGENTS = (
    "researcher:research,analysis",
    "writer:writing,analysis",
    "reviewer:review,writing",
)
FINISHED = {"Succeeded", "Failed", "Cancelled"}
# What each demo agent says a task used (`details.usage` of its final report), so the
# runs show tokens and cost (docs/observability.md).
USAGE: dict[str, dict[str, Any]] = {
    "researcher": {"input_tokens": 1200, "output_tokens": 300, "model": "sim-large"},
    "writer": {"input_tokens": 800, "output_tokens": 600, "model": "sim-small"},
    "reviewer": {"input_tokens": 500, "output_tokens": 100, "model": "sim-small"},
}
COST_PER_TOKEN = {"sim-large": 0.000004, "sim-small": 0.000001}  # USD, made up


def _report_usage(stack: OpsCoreStack) -> None:
    """Have the simulated agents report usage with every task."""
    for name, usage in USAGE.items():
        tokens = usage["input_tokens"] + usage["output_tokens"]
        cost = round(tokens * COST_PER_TOKEN[usage["model"]], 6)
        body = {"usage": {**usage, "cost": cost, "currency": "USD"}}
        httpx.patch(f"{stack.sim_url}/sim/agents/{name}", json=body, timeout=10).raise_for_status()


def _say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def _phases(cp: ControlPlane) -> dict[str, str]:
    out = cp.kubectl("get", "workflows", "-n", NAMESPACE, "-o", "json").stdout
    return {
        item["metadata"]["name"]: (item.get("status") or {}).get("phase", "")
        for item in json.loads(out)["items"]
    }


@contextlib.contextmanager
def _trace_backend(wanted: bool, log_dir: Path) -> Iterator[Jaeger | None]:
    if not wanted:
        yield None
        return
    _say("Starting Jaeger (the test bed's, in memory; make jaeger-bin builds it once)")
    with Jaeger(work_dir=log_dir / "jaeger") as jaeger:
        print(f"   OTLP {jaeger.otlp_endpoint}  query API {jaeger.query_url}")
        yield jaeger


def _say_where_traces_are(cp: ControlPlane, jaeger: Jaeger | None) -> None:
    """Each run's trace id (its uid without dashes) and where to read it, or how to turn
    tracing on when it is off."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if jaeger is None and not endpoint:
        print("   traces: off (make demo JAEGER=1 runs a Jaeger; docs/observability.md#traces)")
        return
    ui = os.environ.get("OPSCORE_JAEGER_URL", "").rstrip("/")
    where = f"Jaeger at {jaeger.query_url}" if jaeger is not None else f"{endpoint}"
    _say(f"Traces: one per run, exported to {where}")
    out = cp.kubectl("get", "workflows", "-n", NAMESPACE, "-o", "json").stdout
    for item in json.loads(out)["items"]:
        trace_id = trace_id_hex(item["metadata"]["uid"])
        if jaeger is not None:
            link = f"{jaeger.query_url}/api/traces/{trace_id}"
        else:
            link = f"{ui}/trace/{trace_id}" if ui else f"trace id {trace_id}"
        print(f"   {item['metadata']['name']:<24} {link}")


def run(*, once: bool, timeout: float, task_seconds: float, jaeger: bool = False) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="opscore-demo-logs-"))
    _say("Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)")
    with ControlPlane() as cp, _trace_backend(jaeger, log_dir) as backend:
        print(f"   API server {cp.server}; started in {sum(cp.timings.values()):.1f}s")
        print(f"   To look around yourself: export KUBECONFIG={cp.kubeconfig}")
        _say(
            "Installing the CRDs (Agent, Workflow, WorkflowTemplate, WorkflowSchedule, "
            "WorkflowTrigger, Approval)"
        )
        install_crds(cp)
        cp.kubectl("create", "namespace", NAMESPACE)
        _say("Starting the sidecar, the operator and AgentKit (simulated) with 3 agents")
        exporting = backend.exporter_env(schedule_delay_ms=1000) if backend else {}
        options = StackOptions(
            agents=AGENTS,
            task_seconds=task_seconds,
            operator_env=exporting,
            sidecar_env=exporting,
        )
        with OpsCoreStack(cp, NAMESPACE, log_dir, options) as stack:
            print(f"   sidecar {stack.sidecar_url}  AgentKit {stack.sim_url}  logs in {log_dir}")
            print(f"   dashboard {stack.sidecar_url}/dashboard?key={options.api_key}")
            _wait_for_agents(cp, len(AGENTS), deadline=time.monotonic() + 60)
            _report_usage(stack)
            print(cp.kubectl("get", "agents", "-n", NAMESPACE, "-o", "wide").stdout)
            _say("Applying the example workflows (kubectl apply -f examples/)")
            print(cp.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLES)).stdout)
            return _watch(cp, stack, once=once, timeout=timeout, jaeger=backend)


def _wait_for_agents(cp: ControlPlane, count: int, *, deadline: float) -> None:
    while time.monotonic() < deadline:
        out = cp.kubectl("get", "agents", "-n", NAMESPACE, "-o", "json").stdout
        ready = [
            a
            for a in json.loads(out)["items"]
            if (a.get("spec") or {}).get("agentName")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (a.get("status") or {}).get("conditions", [])
            )
        ]
        if len(ready) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{count} agents did not register and become Ready within 60s")


def _watch(
    cp: ControlPlane, stack: OpsCoreStack, *, once: bool, timeout: float, jaeger: Jaeger | None
) -> int:
    started = time.monotonic()
    shown = ""
    while time.monotonic() - started < timeout:
        table = cp.kubectl("get", "agents,workflows", "-n", NAMESPACE).stdout
        if table != shown:
            _say(f"kubectl get agents,workflows   (t+{time.monotonic() - started:.1f}s)")
            print(table, flush=True)
            shown = table
        phases = _phases(cp)
        if phases and all(p in FINISHED for p in phases.values()):
            failed = {n: p for n, p in phases.items() if p != "Succeeded"}
            counts = stack.sim_tasks()
            dup = {t: c for t, c in counts.items() if c > 1}
            _say(
                f"All {len(phases)} workflows finished in {time.monotonic() - started:.1f}s; "
                f"AgentKit received {len(counts)} tasks, {len(dup)} more than once"
            )
            _say("What each run used (kubectl get workflows -o wide: Tokens, Cost)")
            print(cp.kubectl("get", "workflows", "-n", NAMESPACE, "-o", "wide").stdout)
            _say_where_traces_are(cp, jaeger)
            if failed or dup:
                print(f"   not succeeded: {failed}; duplicated: {dup}")
                return 1
            if not once:
                print("   Ctrl-C to stop (everything started here stops with it).")
                while True:
                    time.sleep(3600)
            return 0
        time.sleep(0.5)
    print(f"timed out after {timeout:.0f}s; phases: {_phases(cp)}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--once", action="store_true", help="exit when the workflows finish")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--task-seconds", type=float, default=1.0, help="simulated work time")
    parser.add_argument("--jaeger", action="store_true", help="run Jaeger and export traces")
    args = parser.parse_args(argv)
    try:
        return run(
            once=args.once,
            timeout=args.timeout,
            task_seconds=args.task_seconds,
            jaeger=args.jaeger,
        )
    except KeyboardInterrupt:
        print("\nstopped; everything the demo started is stopped.")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
