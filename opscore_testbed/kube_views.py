"""Reading objects the way a user does (`kubectl get -o json`), for tests and tools."""

from __future__ import annotations

import json
from typing import Any

from opscore_testbed.controlplane import ControlPlane


def get(cp: ControlPlane, kind: str, namespace: str, name: str | None = None) -> Any:
    args = ["get", kind, "-n", namespace, "-o", "json"]
    if name:
        args.insert(2, name)
    return json.loads(cp.kubectl(*args).stdout)


def items(cp: ControlPlane, kind: str, namespace: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = get(cp, kind, namespace)["items"]
    return result


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions", []):
        if cond.get("type") == type_:
            return dict(cond)
    return None


def phase(obj: dict[str, Any]) -> str | None:
    value = (obj.get("status") or {}).get("phase")
    return str(value) if value is not None else None


def agent_named(cp: ControlPlane, namespace: str, agent_name: str) -> dict[str, Any] | None:
    for agent in items(cp, "agents", namespace):
        if (agent.get("spec") or {}).get("agentName") == agent_name:
            return agent
    return None


def is_ready(agent: dict[str, Any]) -> bool:
    cond = condition(agent, "Ready")
    return cond is not None and cond.get("status") == "True"
