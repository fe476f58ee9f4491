"""`kubectl opscore` against the real control plane, with the whole stack running.

The installed console script (`kubectl-opscore`) is run as a process, as a user would run
it, once through kubectl itself (plugin discovery on PATH). Assertions are on content
(which steps, in which order, which phases, agents and messages), not on spacing or
colour: output is piped here, so it must come without escape codes anyway.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import REPO, OpsCoreStack

HELLO = REPO / "examples" / "hello-workflow.yaml"
PLUGIN = Path(sys.executable).parent / "kubectl-opscore"
WAITING = """
apiVersion: opscore.opspawn.io/v1alpha1
kind: Workflow
metadata:
  name: waiting
spec:
  steps:
    - name: only
      agent: nobody
"""


def opscore(
    stack: OpsCoreStack, *args: str, via_kubectl: bool = False
) -> subprocess.CompletedProcess[str]:
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} is not installed: run `make venv` (pip install -e .)")
    argv = ["kubectl", "opscore"] if via_kubectl else [str(PLUGIN)]
    env = stack.cp.env()  # KUBECONFIG of the control plane; the venv's bin first on PATH
    env.pop("NO_COLOR", None)
    return subprocess.run(
        [*argv, *args, "-n", stack.namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout, "piped output has no colour codes"
    return result.stdout


def header(text: str) -> dict[str, str]:
    """The `Key: value` lines before the step table of the last frame."""
    frame = text.split("\nName:")[-1]
    head = ("Name:" + frame if not frame.startswith("Name:") else frame).split("\n\n")[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines())}


def step_lines(text: str) -> dict[str, list[str]]:
    """Step name -> the words of its row in the tree table, tree drawing removed."""
    table = text.split("\n\n")[-1].splitlines()
    assert table[0].split()[:3] == ["STEP", "PHASE", "AGENT"]
    rows = {}
    for line in table[1:]:
        words = re.sub(r"^[\s│├└─]*[✔✖●◷○⊘]\s", "", line).split()
        rows[words[0]] = words[1:]
    return rows


def agents_ready(stack: OpsCoreStack) -> None:
    def ready() -> bool:
        agents = [
            kv.agent_named(stack.cp, stack.namespace, n)
            for n in ("researcher", "writer", "reviewer")
        ]
        return all(a is not None and kv.is_ready(a) for a in agents)

    wait_until(ready, timeout=60, what="the three agents Ready")


def phase(stack: OpsCoreStack, name: str) -> str | None:
    return kv.phase(kv.get(stack.cp, "workflow", stack.namespace, name))


def test_get_watch_agents_and_graph_of_a_run_that_succeeds(stack: OpsCoreStack) -> None:
    agents_ready(stack)
    stack.cp.kubectl("apply", "-n", stack.namespace, "-f", str(HELLO))

    watched = opscore(stack, "watch", "hello", "--interval", "0.3")
    assert watched.returncode == 0, watched.stderr
    assert header(watched.stdout)["Phase"] == "Succeeded"

    text = ok(opscore(stack, "get", "hello"))
    assert {k: header(text)[k] for k in ("Name", "Namespace", "Phase", "Progress")} == {
        "Name": "hello",
        "Namespace": stack.namespace,
        "Phase": "Succeeded",
        "Progress": "3/3",
    }
    rows = step_lines(text)
    assert list(rows) == ["research", "draft", "review"]
    assert {name: words[:3] for name, words in rows.items()} == {
        "research": ["Succeeded", "researcher", "1"],
        "draft": ["Succeeded", "writer", "1"],
        "review": ["Succeeded", "reviewer", "1"],
    }
    table = text.split("\n\n")[-1].splitlines()
    assert table[2].index("draft") > table[1].index("research"), "draft hangs under research"

    as_json = json.loads(ok(opscore(stack, "get", "hello", "-o", "json")))
    assert (as_json["kind"], as_json["status"]["phase"]) == ("Workflow", "Succeeded")
    assert "managedFields" not in as_json["metadata"]
    as_yaml = yaml.safe_load(ok(opscore(stack, "get", "hello", "-o", "yaml")))
    assert as_yaml["status"]["progress"] == "3/3"

    # The counters are written with the end of each task (at the next pass).
    def counted() -> bool:
        rows = ok(opscore(stack, "agents", via_kubectl=True)).splitlines()[1:]
        return len(rows) == 3 and all(row.split()[-3:] == ["1", "0", "Ready"] for row in rows)

    wait_until(counted, timeout=30, interval=0.5, what="each agent's task counted")
    listing = ok(opscore(stack, "agents", via_kubectl=True)).splitlines()
    assert re.split(r"\s{2,}", listing[0]) == [
        "NAME",
        "STATE",
        "CURRENT TASK",
        "LAST SEEN",
        "SUCCEEDED",
        "FAILED",
        "READY",
    ]
    by_name = {line.split()[0]: line.split() for line in listing[1:]}
    assert set(by_name) == {"researcher", "writer", "reviewer"}
    for words in by_name.values():
        assert words[-3:] == ["1", "0", "Ready"]

    mermaid = ok(opscore(stack, "graph", "hello")).splitlines()
    assert mermaid[0] == "graph LR"
    assert {'    s0["research"]', '    s1["draft"]', '    s2["review"]'} <= set(mermaid)
    assert {"    s0 --> s1", "    s1 --> s2", "    class s0,s1,s2 Succeeded"} <= set(mermaid)
    dot = ok(opscore(stack, "graph", "hello", "--format", "dot"))
    assert dot.startswith('digraph "hello" {')
    assert "s0 -> s1;" in dot

    cancel = opscore(stack, "cancel", "hello")
    assert (cancel.returncode, cancel.stderr.strip()) == (
        1,
        'error: workflow "hello" already finished (Succeeded); nothing to cancel',
    )
    missing = opscore(stack, "get", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        'Error from server (NotFound): workflows.opscore.opspawn.io "nope" not found',
    )


def test_verbs_change_the_spec_and_the_run_follows(stack: OpsCoreStack) -> None:
    agents_ready(stack)
    cp, ns = stack.cp, stack.namespace

    # A run that waits (its agent does not exist): suspend, resume, cancel.
    cp.kubectl("apply", "-n", ns, "-f", "-", input=WAITING)
    assert ok(opscore(stack, "suspend", "waiting")).strip() == (
        "workflow.opscore.opspawn.io/waiting suspended"
    )
    assert kv.get(cp, "workflow", ns, "waiting")["spec"]["suspend"] is True
    wait_until(lambda: phase(stack, "waiting") == "Suspended", timeout=30, what="Suspended")
    again = opscore(stack, "suspend", "waiting")
    assert (again.returncode, again.stderr.strip()) == (
        1,
        'error: workflow "waiting" is already suspended',
    )
    ok(opscore(stack, "resume", "waiting"))
    assert kv.get(cp, "workflow", ns, "waiting")["spec"]["suspend"] is False
    ok(opscore(stack, "cancel", "waiting"))
    assert kv.get(cp, "workflow", ns, "waiting")["spec"]["cancel"] is True
    wait_until(lambda: phase(stack, "waiting") == "Cancelled", timeout=30, what="Cancelled")
    refused = opscore(stack, "retry", "waiting")
    assert refused.returncode == 1
    assert "only a failed run can be retried" in refused.stderr

    # A run that fails (the writer fails every task), then is retried and succeeds.
    sim_agent = f"{stack.sim_url}/sim/agents/writer"
    httpx.patch(sim_agent, json={"failure_rate": 1.0}, trust_env=False).raise_for_status()
    cp.kubectl("apply", "-n", ns, "-f", str(HELLO))
    failed = opscore(stack, "watch", "hello", "--interval", "0.3")
    assert failed.returncode == 1
    rows = step_lines(failed.stdout)
    assert [rows[s][0] for s in ("research", "draft", "review")] == [
        "Succeeded",
        "Failed",
        "Skipped",
    ]
    assert "TASK_FAILED" in " ".join(rows["draft"])

    httpx.patch(sim_agent, json={"failure_rate": 0.0}, trust_env=False).raise_for_status()
    assert ok(opscore(stack, "retry", "hello")).strip() == (
        "workflow.opscore.opspawn.io/hello retried (retryGeneration 1)"
    )
    assert kv.get(cp, "workflow", ns, "hello")["spec"]["retryGeneration"] == 1
    retried = opscore(stack, "watch", "hello", "--interval", "0.3")
    assert retried.returncode == 0, retried.stdout
    assert [w[0] for w in step_lines(retried.stdout).values()] == ["Succeeded"] * 3
