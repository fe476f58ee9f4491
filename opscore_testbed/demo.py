"""`make demo`: the whole of Ops-Core on a local control plane, in one command.

It starts etcd + kube-apiserver + kube-controller-manager, installs the CRDs, starts the
sidecar, the operator and an AgentKit simulator with three agents (they register through
AgentKit's webhook and report state like real AgentKit SDK agents), applies the example
workflows and shows `kubectl get agents,workflows` until every workflow has finished.
Ctrl-C stops everything it started. `--once` (DEMO_ONCE=1) exits by itself: 0 when every
example workflow succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from opscore_testbed.controlplane import ControlPlane
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


def run(*, once: bool, timeout: float, task_seconds: float) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="opscore-demo-logs-"))
    _say("Starting a local control plane (etcd, kube-apiserver, kube-controller-manager)")
    with ControlPlane() as cp:
        print(f"   API server {cp.server}; started in {sum(cp.timings.values()):.1f}s")
        print(f"   To look around yourself: export KUBECONFIG={cp.kubeconfig}")
        _say("Installing the CRDs (Agent, Workflow, WorkflowTemplate, WorkflowSchedule)")
        install_crds(cp)
        cp.kubectl("create", "namespace", NAMESPACE)
        _say("Starting the sidecar, the operator and AgentKit (simulated) with 3 agents")
        options = StackOptions(agents=AGENTS, task_seconds=task_seconds)
        with OpsCoreStack(cp, NAMESPACE, log_dir, options) as stack:
            print(f"   sidecar {stack.sidecar_url}  AgentKit {stack.sim_url}  logs in {log_dir}")
            print(f"   dashboard {stack.sidecar_url}/dashboard?key={options.api_key}")
            _wait_for_agents(cp, len(AGENTS), deadline=time.monotonic() + 60)
            _report_usage(stack)
            print(cp.kubectl("get", "agents", "-n", NAMESPACE, "-o", "wide").stdout)
            _say("Applying the example workflows (kubectl apply -f examples/)")
            print(cp.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLES)).stdout)
            return _watch(cp, stack, once=once, timeout=timeout)


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


def _watch(cp: ControlPlane, stack: OpsCoreStack, *, once: bool, timeout: float) -> int:
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
    args = parser.parse_args(argv)
    try:
        return run(once=args.once, timeout=args.timeout, task_seconds=args.task_seconds)
    except KeyboardInterrupt:
        print("\nstopped; everything the demo started is stopped.")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
