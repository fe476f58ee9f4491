"""What the agent-lifecycle tests (`test_agent_*.py`) share: speaking to the sidecar as an
agent or as AgentKit, declaring Agents as a user, reading Agents as `kubectl` shows them,
and driving the AgentKit simulator. Waits have deadlines; nothing sleeps a fixed time
unless the test is about time passing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from opscore_logic.registration import agent_id_of
from opscore_testbed import kube_views as kv
from opscore_testbed.agentkit_sim_state import sign_webhook
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack

API_VERSION = "opscore.opspawn.io/v1alpha1"
NOTIFY = "/v1/opscore/internal/agent/notify"
FINISHED = ("Succeeded", "Failed", "Cancelled")

Body = dict[str, Any]


# -- as an agent, as AgentKit, as a user ---------------------------------------------------


def report(stack: OpsCoreStack, agent_id: str, state: str = "idle", **details: Any) -> None:
    """One state report, as the AgentKit SDK sends it; must be accepted."""
    body = {
        "agentId": agent_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "state": state,
        "details": details,
    }
    resp = httpx.post(
        f"{stack.sidecar_url}/v1/opscore/agent/{agent_id}/state",
        json=body,
        headers={"Authorization": f"Bearer {stack.options.api_key}"},
        trust_env=False,
        timeout=10,
    )
    assert resp.status_code == 202, resp.text


def registration_body(
    agent_id: str, name: str, capabilities: list[str], *, metadata: Any = None
) -> bytes:
    details = {
        "agentId": agent_id,
        "agentName": name,
        "version": "1.0.0",
        "capabilities": capabilities,
        "contactEndpoint": f"http://agents.invalid/{name}",
        "metadata": {} if metadata is None else metadata,
        "registration_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    return json.dumps({"event_type": "REGISTER", "agent_details": details}).encode()


def webhook(
    stack: OpsCoreStack,
    body: bytes,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """AgentKit's signed registration webhook (override parts to break it)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = stack.options.webhook_secret if secret is None else secret
    headers = {
        "Content-Type": "application/json",
        "X-AgentKit-Timestamp": stamp,
        "X-AgentKit-Signature": signature or sign_webhook(secret=key, timestamp=stamp, body=body),
    }
    return httpx.post(
        f"{stack.sidecar_url}{NOTIFY}", content=body, headers=headers, trust_env=False, timeout=10
    )


def declare(stack: OpsCoreStack, name: str, agent_id: str, **spec: Any) -> None:
    """`kubectl apply` of an Agent a user writes: a name of their own and spec.agentId."""
    body = {
        "apiVersion": API_VERSION,
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {"agentId": agent_id, **spec},
    }
    stack.cp.kubectl("apply", "-n", stack.namespace, "-f", "-", input=json.dumps(body))


def patch_agent(stack: OpsCoreStack, name: str, **spec: Any) -> None:
    stack.cp.kubectl(
        "patch",
        "-n",
        stack.namespace,
        "agent",
        name,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": spec}),
    )


def apply(stack: OpsCoreStack, body: Body) -> None:
    stack.cp.kubectl("apply", "-n", stack.namespace, "-f", "-", input=json.dumps(body))


def workflow(name: str, *steps: Body, **spec: Any) -> Body:
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": list(steps), **spec},
    }


# -- reading -------------------------------------------------------------------------------


def agents(stack: OpsCoreStack) -> list[Body]:
    return kv.items(stack.cp, "agents", stack.namespace)


def holders(stack: OpsCoreStack, agent_id: str) -> list[Body]:
    """The Agents holding `agent_id` (spec.agentId, else the name)."""
    return [a for a in agents(stack) if agent_id_of(a) == agent_id]


def agent(stack: OpsCoreStack, name: str) -> Body:
    result: Body = kv.get(stack.cp, "agent", stack.namespace, name)
    return result


def ready(body: Body) -> tuple[str | None, str | None]:
    cond = kv.condition(body, "Ready")
    return (cond or {}).get("status"), (cond or {}).get("reason")


def get_workflow(stack: OpsCoreStack, name: str) -> Body:
    result: Body = kv.get(stack.cp, "workflow", stack.namespace, name)
    return result


def steps_of(wf: Body) -> dict[str, Body]:
    return {s["name"]: s for s in (wf.get("status") or {}).get("steps", [])}


def events(stack: OpsCoreStack, name: str) -> list[Body]:
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
    return items


def reasons(stack: OpsCoreStack, name: str) -> list[str]:
    return [e["reason"] for e in events(stack, name)]


def wait_for(
    probe: Callable[[], Any], *, what: str, timeout: float = 30, interval: float = 0.2
) -> Any:
    """Poll `probe` until it returns something truthy; return that (or fail saying `what`
    and the last value seen)."""
    seen: list[Any] = [None]

    def check() -> bool:
        seen[0] = probe()
        return bool(seen[0])

    try:
        wait_until(check, timeout=timeout, interval=interval, what=what)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last seen: {str(seen[0])[:2000]}") from None
    return seen[0]


def wait_workflow(
    stack: OpsCoreStack, name: str, check: Callable[[Body], bool], *, what: str, timeout: float = 60
) -> Body:
    last: list[Body] = [{}]

    def probe() -> bool:
        last[0] = get_workflow(stack, name)
        return check(last[0])

    try:
        wait_until(probe, timeout=timeout, interval=0.2, what=f"workflow {name}: {what}")
    except TimeoutError as exc:
        status = json.dumps(last[0].get("status"), indent=1)[:3000]
        raise TimeoutError(f"{exc}; last status:\n{status}") from None
    return last[0]


def wait_finished(stack: OpsCoreStack, name: str, *, timeout: float = 60) -> Body:
    return wait_workflow(
        stack, name, lambda wf: kv.phase(wf) in FINISHED, what="to finish", timeout=timeout
    )


# -- the AgentKit simulator ----------------------------------------------------------------


def sim(stack: OpsCoreStack, method: str, path: str, body: Any = None) -> Any:
    resp = httpx.request(method, f"{stack.sim_url}{path}", json=body, trust_env=False, timeout=30)
    resp.raise_for_status()
    return resp.json()


def sim_agent_id(stack: OpsCoreStack, name: str) -> str:
    agent_id: str = sim(stack, "GET", f"/sim/agents/{name}")["agentId"]
    return agent_id


def agent_for(stack: OpsCoreStack, sim_name: str, timeout: float = 30) -> Body:
    """The Agent holding a simulated agent's current id, once it is Ready."""
    agent_id = sim_agent_id(stack, sim_name)

    def found() -> Body | None:
        bodies = holders(stack, agent_id)
        return bodies[0] if len(bodies) == 1 and ready(bodies[0])[0] == "True" else None

    result: Body = wait_for(found, what=f"agent {sim_name} ({agent_id}) Ready", timeout=timeout)
    return result
