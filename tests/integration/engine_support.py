"""What the engine feature tests (`test_engine_*.py`) share: manifests, waits and reads.

Everything here reads the system the way a user does: `kubectl get -o json`, `kubectl get
events`, and the AgentKit simulator's own books (`/sim/tasks`, `/sim/agents`). Waits are
on conditions with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx
import pytest

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import KubectlError
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

API_VERSION = "opscore.opspawn.io/v1alpha1"
FINISHED = ("Succeeded", "Failed", "Cancelled")

Body = dict[str, Any]


def options_from(request: pytest.FixtureRequest, default: StackOptions) -> StackOptions:
    """The `stack_options` a test asked for with indirect parametrization, else `default`."""
    param = getattr(request, "param", None)
    return param if isinstance(param, StackOptions) else default


# -- manifests -----------------------------------------------------------------------------


def step(name: str, **fields: Any) -> Body:
    """A step; keyword names are the wire's camelCase (e.g. `dependsOn=[]`)."""
    return {"name": name, **fields}


def workflow(name: str, *steps: Body, **spec: Any) -> Body:
    body: Body = {"apiVersion": API_VERSION, "kind": "Workflow", "metadata": {"name": name}}
    body["spec"] = {**({"steps": list(steps)} if steps else {}), **spec}
    return body


def template(name: str, *steps: Body, parameters: list[Body] | None = None) -> Body:
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {"parameters": parameters or [], "steps": list(steps)},
    }


def apply(stack: OpsCoreStack, *objects: Body) -> None:
    """`kubectl apply` of the objects as one List (one command, like `-f dir/`)."""
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    stack.cp.kubectl("apply", "-n", stack.namespace, "-f", "-", input=json.dumps(manifest))


def apply_rejected(stack_cp: Any, namespace: str, obj: Body) -> str:
    """`kubectl apply` that must fail; returns kubectl's error text."""
    try:
        stack_cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
    except KubectlError as exc:
        return f"{exc.stdout or ''}{exc.stderr or ''}"
    raise AssertionError(f"the API server accepted {obj['metadata']['name']}")


def patch_spec(stack: OpsCoreStack, name: str, **spec: Any) -> None:
    """`kubectl patch workflow NAME --type merge -p '{"spec": {...}}'`."""
    stack.cp.kubectl(
        "patch",
        "-n",
        stack.namespace,
        "workflow",
        name,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": spec}),
    )


# -- reading -------------------------------------------------------------------------------


def get_workflow(stack: OpsCoreStack, name: str) -> Body:
    result: Body = kv.get(stack.cp, "workflow", stack.namespace, name)
    return result


def steps_of(wf: Body) -> dict[str, Body]:
    return {s["name"]: s for s in (wf.get("status") or {}).get("steps", [])}


def when(value: str) -> datetime:
    """A status timestamp (RFC 3339) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_workflow(
    stack: OpsCoreStack,
    name: str,
    predicate: Callable[[Body], bool],
    *,
    timeout: float = 60,
    what: str,
) -> Body:
    """Poll the workflow until `predicate(body)` holds; return that body."""
    seen: list[Body] = []

    def check() -> bool:
        body = get_workflow(stack, name)
        seen[:] = [body]
        return predicate(body)

    try:
        wait_until(check, timeout=timeout, interval=0.1, what=f"workflow {name}: {what}")
    except TimeoutError as exc:
        status = json.dumps((seen[0] if seen else {}).get("status"), indent=1)[:3000]
        raise TimeoutError(f"{exc}; last status:\n{status}") from None
    return seen[0]


def wait_finished(stack: OpsCoreStack, name: str, *, timeout: float = 60) -> Body:
    return wait_workflow(
        stack, name, lambda wf: kv.phase(wf) in FINISHED, timeout=timeout, what="to finish"
    )


def wait_step(
    stack: OpsCoreStack, name: str, step_name: str, phase: str, *, timeout: float = 60
) -> Body:
    return wait_workflow(
        stack,
        name,
        lambda wf: steps_of(wf).get(step_name, {}).get("phase") == phase,
        timeout=timeout,
        what=f"step {step_name} {phase}",
    )


def events_for(stack: OpsCoreStack, name: str) -> list[Body]:
    """`kubectl get events --field-selector involvedObject.name=NAME`, oldest first."""
    out = stack.cp.kubectl(
        "get",
        "events",
        "-n",
        stack.namespace,
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "json",
    ).stdout
    items: list[Body] = json.loads(out)["items"]
    return sorted(items, key=lambda e: (e.get("lastTimestamp") or "", e["metadata"]["name"]))


def wait_event(stack: OpsCoreStack, name: str, reason: str, *, timeout: float = 30) -> Body:
    found: list[Body] = []

    def check() -> bool:
        found[:] = [e for e in events_for(stack, name) if e["reason"] == reason]
        return bool(found)

    wait_until(check, timeout=timeout, interval=0.2, what=f"a {reason} event on {name}")
    return found[0]


def operator_log(stack: OpsCoreStack) -> str:
    assert stack.operator is not None
    return stack.operator.log_path.read_text(errors="replace")


# -- the simulator -------------------------------------------------------------------------


def agents_ready(stack: OpsCoreStack, names: Iterable[str], timeout: float = 60) -> None:
    wanted = tuple(names)

    def ready() -> bool:
        agents = [kv.agent_named(stack.cp, stack.namespace, n) for n in wanted]
        return all(a is not None and kv.is_ready(a) for a in agents)

    wait_until(ready, timeout=timeout, interval=0.1, what=f"agents {wanted} registered and Ready")


def agent_resource_names(stack: OpsCoreStack) -> dict[str, str]:
    """Simulated agent name (spec.agentName) -> Agent resource name."""
    return {
        a["spec"].get("agentName", a["metadata"]["name"]): a["metadata"]["name"]
        for a in kv.items(stack.cp, "agents", stack.namespace)
    }


def sim_patch(stack: OpsCoreStack, agent: str, **changes: Any) -> None:
    """PATCH /sim/agents/NAME: change a simulated agent's behaviour from now on."""
    httpx.patch(
        f"{stack.sim_url}/sim/agents/{agent}", json=changes, timeout=10, trust_env=False
    ).raise_for_status()


def sim_agent(stack: OpsCoreStack, agent: str) -> Body:
    """GET /sim/agents/NAME: the simulated agent's behaviour and counters."""
    resp = httpx.get(f"{stack.sim_url}/sim/agents/{agent}", timeout=10, trust_env=False)
    resp.raise_for_status()
    body: Body = resp.json()
    return body


def sim_received(stack: OpsCoreStack) -> list[Body]:
    """Every message the simulated agents received, in order (GET /sim/tasks)."""
    resp = httpx.get(f"{stack.sim_url}/sim/tasks", timeout=10, trust_env=False)
    resp.raise_for_status()
    tasks: list[Body] = resp.json()["tasks"]
    return tasks


def received_for(stack: OpsCoreStack, task_id: str) -> Body:
    matches = [t for t in sim_received(stack) if t.get("opscore_task_id") == task_id]
    assert len(matches) == 1, f"task {task_id} reached the agents {len(matches)} times"
    return matches[0]


def overlaps(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two step entries' [dispatchedAt, finishedAt] windows overlap."""
    return when(a["dispatchedAt"]) < when(b["finishedAt"]) and when(b["dispatchedAt"]) < when(
        a["finishedAt"]
    )
