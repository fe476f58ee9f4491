"""`python -m opscore_testbed.dashboard_screenshot`: the README's picture of the dashboard.

Made, not drawn: a local control plane, the stack with four simulated agents (3 s per
task, one of them failing every task), a few runs in different states (finished, failed,
suspended, one from a template) and the example fan-out selected while its two analyses
run in parallel. Then headless Chromium takes the screenshot, as the browser test does.
Rerun it after changing the page so the README shows what people get.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from opscore_testbed import kube_views as kv
from opscore_testbed.chromium import Chromium
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack, StackOptions, install_crds

NAMESPACE = "opscore-demo"
KEY = "opscore-screenshot-key"
AGENTS = (
    "researcher:research,analysis",
    "writer:writing,analysis",
    "reviewer:review,writing",
    "auditor:audit",
)
EXAMPLES = REPO / "examples"


def _example(file: str, name: str | None = None, **spec: Any) -> str:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / file).read_text()) if d]
    for doc in docs:
        if name and doc["kind"] == "Workflow":
            doc["metadata"]["name"] = name
        if doc["kind"] == "Workflow":
            doc["spec"].update(spec)
    return yaml.safe_dump_all(docs)


AUDIT = """
apiVersion: opscore.opspawn.io/v1alpha1
kind: Workflow
metadata: {name: compliance-audit}
spec:
  steps:
    - {name: gather-evidence, capabilities: [research]}
    - {name: audit, capabilities: [audit]}
    - {name: sign-off, capabilities: [review]}
"""


def _phase(stack: OpsCoreStack, name: str) -> str | None:
    return kv.phase(kv.get(stack.cp, "workflow", stack.namespace, name))


def _step_phase(stack: OpsCoreStack, name: str, step: str) -> str | None:
    status = kv.get(stack.cp, "workflow", stack.namespace, name).get("status") or {}
    return next((s.get("phase") for s in status.get("steps", []) if s["name"] == step), None)


def capture(out: Path) -> None:
    with ControlPlane() as cp:
        install_crds(cp)
        cp.kubectl("create", "namespace", NAMESPACE)
        options = StackOptions(
            agents=AGENTS, task_seconds=3.0, sidecar_env={"OPSCORE_DASHBOARD_KEY": KEY}
        )
        logs = Path(tempfile.mkdtemp(prefix="opscore-screenshot-logs-"))
        with OpsCoreStack(cp, NAMESPACE, logs, options) as stack:
            wait_until(
                lambda: (
                    len(kv.items(cp, "agents", NAMESPACE)) == len(AGENTS)
                    and all(kv.is_ready(a) for a in kv.items(cp, "agents", NAMESPACE))
                ),
                timeout=90,
                what="the agents Ready",
            )
            httpx.patch(
                f"{stack.sim_url}/sim/agents/auditor", json={"failure_rate": 1.0}, trust_env=False
            ).raise_for_status()

            def apply(text: str) -> None:
                cp.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=text)

            apply(_example("hello-workflow.yaml", "hello"))
            apply(AUDIT)
            apply(_example("report-template.yaml"))
            wait_until(lambda: _phase(stack, "hello") == "Succeeded", timeout=90, what="hello")
            wait_until(
                lambda: _phase(stack, "compliance-audit") == "Failed", timeout=90, what="audit"
            )
            apply(_example("hello-workflow.yaml", "nightly-digest", suspend=True))
            apply(_example("fan-out-workflow.yaml"))
            wait_until(
                lambda: _step_phase(stack, "fan-out", "analyse-risk") == "Running",
                timeout=60,
                what="the fan-out's analyses to run",
            )
            with Chromium(width=1440, height=1000) as browser:
                browser.navigate(f"{stack.sidecar_url}/dashboard?key={KEY}#fan-out")
                browser.wait_for(
                    "document.querySelectorAll('#dag g.step.phase-Running').length >= 1",
                    timeout=30,
                    what="the fan-out's DAG",
                )
                time.sleep(1.0)  # one more poll, so ages and timings have settled
                browser.screenshot(out)
    print(f"wrote {out}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opscore_testbed.dashboard_screenshot")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    args = parser.parse_args(argv)
    capture(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
