"""An in-memory Kubernetes API for the sidecar's unit tests (tests: sidecar/test_sidecar_fakes.py).

`FakeKube` honours what the sidecar relies on: get/list/create/patch with NotFound and
Conflict, JSON merge patches (RFC 7386), the status subresource (a create or a plain patch
never writes status; a status patch writes nothing else), label selectors, generateName,
and injectable `Unavailable` outages. The sidecar's test modules import it from here.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import jsonpointer
from fastapi import FastAPI

from opscore_kube import AGENTS, Conflict, Invalid, NotFound, Resource, Unavailable
from opscore_logic.agent_model import AgentReport
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_sidecar.app import create_app
from opscore_sidecar.settings import SidecarSettings

NAMESPACE = "agents"
API_KEY = "test-key-0123456789"
SECRET = "webhook-secret"
AGENT_ID = "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a"

Body = dict[str, Any]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True)
class Call:
    verb: str
    name: str | None
    body: Any = None


class FakeKube:
    """Agent objects in memory, with the API server's semantics the sidecar depends on."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Body] = {}
        self.calls: list[Call] = []
        self.ready = True
        self.down = False  # every call raises Unavailable
        self.fail_next: dict[str, list[Exception]] = {}
        self.patch_gate: asyncio.Event | None = None  # when set, status patches wait on it
        self.status_patch_started = asyncio.Event()
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)

    # -- helpers for tests ----------------------------------------------------------------

    def agent(self, name: str, namespace: str = NAMESPACE) -> Body:
        return self.objects[(AGENTS.plural, namespace, name)]

    def agents(self, namespace: str = NAMESPACE) -> list[Body]:
        return [
            o for (p, ns, _), o in self.objects.items() if p == AGENTS.plural and ns == namespace
        ]

    def reports(self, name: str) -> list[Body]:
        return list(self.agent(name).get("status", {}).get("reports", []))

    def count(self, verb: str) -> int:
        return sum(1 for call in self.calls if call.verb == verb)

    def put(self, obj: Body, namespace: str = NAMESPACE, plural: str = AGENTS.plural) -> Body:
        """Store an object as if a user had applied it (status included)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[(plural, namespace, meta["name"])] = obj
        return obj

    def _enter(self, verb: str, name: str | None, body: Any = None) -> None:
        self.calls.append(Call(verb, name, copy.deepcopy(body)))
        if self.down:
            raise Unavailable(0, "Unreachable", "connection refused")
        queued = self.fail_next.get(verb)
        if queued:
            raise queued.pop(0)

    async def _patching(
        self, resource: Resource, namespace: str | None, name: str, body: Any, *, status: bool
    ) -> tuple[tuple[str, str, str], Body]:
        """What every PATCH does first: record it, hold a status patch at `patch_gate`,
        and find the object (404 when there is none)."""
        self._enter("patch_status" if status else "patch", name, body)
        if status:
            self.status_patch_started.set()
        if status and self.patch_gate is not None:
            await self.patch_gate.wait()
        key = (resource.plural, namespace or "", name)
        if key not in self.objects:
            raise NotFound(404, "NotFound", f"{resource.plural} {name!r} not found")
        return key, self.objects[key]

    # -- the KubeApi protocol -------------------------------------------------------------

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body:
        self._enter("get", name)
        try:
            return copy.deepcopy(self.objects[(resource.plural, namespace or "", name)])
        except KeyError:
            raise NotFound(404, "NotFound", f"{resource.plural} {name!r} not found") from None

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Body:
        self._enter("list", None, label_selector)
        wanted = dict(part.split("=", 1) for part in (label_selector or "").split(",") if part)
        items = [
            copy.deepcopy(obj)
            for (plural, ns, _), obj in self.objects.items()
            if plural == resource.plural
            and (namespace is None or ns == namespace)
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return {"kind": "AgentList", "items": items}

    async def create(self, resource: Resource, namespace: str | None, body: Body) -> Body:
        self._enter("create", body.get("metadata", {}).get("name"), body)
        obj = copy.deepcopy(body)
        obj.pop("status", None)  # the status subresource: create ignores status
        meta = obj.setdefault("metadata", {})
        if "name" not in meta:
            suffix = hashlib.sha256(str(next(self._uids)).encode()).hexdigest()[:5]
            meta["name"] = meta.pop("generateName") + suffix
        key = (resource.plural, namespace or "", meta["name"])
        if key in self.objects:
            raise Conflict(409, "AlreadyExists", f"{resource.plural} {meta['name']!r} exists")
        return copy.deepcopy(self.put(obj, namespace or "", resource.plural))

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Body,
        *,
        status: bool = False,
    ) -> Body:
        key, current = await self._patching(resource, namespace, name, patch, status=status)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", f"{name!r} was modified; apply to the latest")
        if status:
            updated = dict(current)
            updated["status"] = merge_patch(current.get("status"), patch.get("status"))
        else:
            without_status = {k: v for k, v in patch.items() if k != "status"}
            updated = merge_patch(current, without_status)
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        # What the API server stores is JSON: round-trip it like the real one does.
        self.objects[key] = json.loads(json.dumps(updated))
        return copy.deepcopy(self.objects[key])

    async def json_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        operations: Sequence[Body],
        *,
        status: bool = False,
    ) -> Body:
        """RFC 6902 as the API server applies it: a failed `test` applies nothing (422);
        on the status subresource only the status changes."""
        # Counted as the same verb as a merge patch: both are one PATCH of the object.
        key, current = await self._patching(resource, namespace, name, operations, status=status)
        try:
            patched = jsonpatch.apply_patch(current, list(operations))
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            raise Invalid(422, "Invalid", "the server rejected our request") from None
        updated = dict(current)
        if status:
            updated["status"] = patched.get("status")
        else:
            updated = {**patched, "status": current.get("status")}
        updated["metadata"] = {
            **current["metadata"],
            "resourceVersion": str(next(self._versions)),
        }
        self.objects[key] = json.loads(json.dumps(updated))
        return copy.deepcopy(self.objects[key])

    async def readyz(self) -> bool:
        return self.ready and not self.down


# -- helpers shared by the sidecar tests ------------------------------------------------------


def settings(**overrides: Any) -> SidecarSettings:
    values: dict[str, Any] = {
        "namespace": NAMESPACE,
        "api_key": API_KEY,
        "webhook_secret": SECRET,
        "kubeconfig": None,
        "log_level": "INFO",
        # Heartbeat lingering is specified in test_sidecar_writer.py; here every report
        # is answered once durable, so tests can assert on the stored list at once.
        "report_linger_seconds": 0.0,
    }
    values.update(overrides)
    return SidecarSettings(**values)


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def report_body(
    agent_id: str = AGENT_ID,
    state: str = "idle",
    timestamp: str = "2026-11-25T08:34:07.847342+00:00",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"agentId": agent_id, "timestamp": timestamp, "state": state, "details": details or {}}


REPORTS_START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def declared_agent(name: str, agent_id: str, **status: object) -> dict[str, object]:
    """A user-declared Agent with the agent-key label the sidecar finds it by."""
    return {
        "apiVersion": AGENTS.api_version,
        "kind": "Agent",
        "metadata": {"name": name, "labels": {AGENT_KEY_LABEL: agent_key(agent_id)}},
        "spec": {"agentId": agent_id},
        "status": status,
    }


def agent_report(state: str, second: int) -> AgentReport:
    """A parsed report sent and received `second` seconds after REPORTS_START."""
    at = REPORTS_START + timedelta(seconds=second)
    return AgentReport(state=state, timestamp=at, received_at=at)


def state_url(agent_id: str = AGENT_ID) -> str:
    return f"/v1/opscore/agent/{agent_id}/state"


def signed_headers(body: bytes, *, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    ts = str(timestamp)
    signature = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-AgentKit-Timestamp": ts,
        "X-AgentKit-Signature": signature,
    }


@asynccontextmanager
async def client_for(
    kube: FakeKube, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(settings(**overrides), kube)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        yield client, app


def write_keys(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


# -- the fake's own tests -------------------------------------------------------------------
