"""The kopf adapter: watch Workflows, Agents, WorkflowTemplates, WorkflowSchedules and
Approvals and hand every event to the runtime.
Run with `kopf run -m opscore_operator.handlers --namespace NS`.

Handlers are `async` on purpose: kopf runs plain `def` handlers in a thread pool, and the
runtime's queues belong to the event loop.

Only `on.event` handlers are used: they are level-based (the runtime decides from the
whole observed state), they write nothing of kopf's own to the objects (no progress
annotations, no finalizers), and they add no wait on the report -> dispatch path.

Before the first reconcile the caches must hold every object (an informer's cache sync):
a restarted operator that reconciled one workflow before it had seen the others would
give their busy agents a second task. The startup handler lists the five kinds itself
(`initial_sync.py` says why not kopf's index handlers, and how an object deleted before
kopf's own listing is forgotten); kopf's events keep the caches current from there.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any, cast

import kopf

from opscore_kube.resources import GROUP, VERSION
from opscore_operator.initial_sync import watched_namespaces
from opscore_operator.logs import configure_logging
from opscore_operator.runtime import Runtime
from opscore_operator.settings import OperatorSettings
from opscore_operator.store import key_of
from opscore_operator.watch_only import NoDiffBase

_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator has not started")
    return _runtime


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _runtime
    settings.posting.enabled = False  # our EventRecorder posts, off the hot path
    settings.persistence.diffbase_storage = NoDiffBase()  # on.event only: watch_only.py
    # Serve the --namespace names as given and the CRDs found at startup: without this,
    # kopf lists and watches Namespaces and CRDs cluster-wide, rights a namespaced
    # install does not grant (deploy/instance/rbac.yaml). CRDs installed later need a
    # restart of the operator.
    settings.scanning.disabled = True
    settings.watching.chunk_size = 500  # kopf's listing in pages, as the sync's
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    operator_settings = OperatorSettings()
    configure_logging(operator_settings.log_level)
    _runtime = Runtime(operator_settings)
    namespaces = watched_namespaces(sys.argv[1:])
    _runtime.start(namespaces)
    await _runtime.sync(namespaces)
    # What exists now (kopf, the clients, pydantic's schemas, the synced caches: ~90k
    # objects before any Workflow) lives as long as the process. Out of the collector's
    # sight, a full collection no longer stops the event loop for ~45 ms in the middle of
    # a report -> dispatch (the sidecar does the same, app.py). Cached bodies are plain
    # dicts and lists, freed by their reference counts when replaced, frozen or not.
    gc.freeze()


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    if _runtime is not None:
        await _runtime.stop()


@kopf.on.probe(id="workqueue")
def workqueue_depth(**_: Any) -> int:
    return len(runtime().workflow_queue)


@kopf.on.event(GROUP, VERSION, "workflows")
async def workflow_event(event: kopf.RawEvent, **_: Any) -> None:
    _deliver("workflows", event, runtime().on_workflow)


@kopf.on.event(GROUP, VERSION, "agents")
async def agent_event(event: kopf.RawEvent, **_: Any) -> None:
    _deliver("agents", event, runtime().on_agent)


@kopf.on.event(GROUP, VERSION, "workflowtemplates")
async def template_event(event: kopf.RawEvent, **_: Any) -> None:
    _deliver("workflowtemplates", event, runtime().on_template)


@kopf.on.event(GROUP, VERSION, "workflowschedules")
async def schedule_event(event: kopf.RawEvent, **_: Any) -> None:
    _deliver("workflowschedules", event, runtime().on_schedule)


@kopf.on.event(GROUP, VERSION, "approvals")
async def approval_event(event: kopf.RawEvent, **_: Any) -> None:
    _deliver("approvals", event, runtime().on_approval)


def _deliver(
    plural: str, event: kopf.RawEvent, deliver: Callable[[str | None, dict[str, Any]], None]
) -> None:
    """Every watch event, kopf's own listing included (type None); an older body never
    replaces a newer one in the runtime's caches."""
    body = dict(cast(dict[str, Any], event["object"]))
    kind = event.get("type")
    deliver(kind if kind in ("ADDED", "MODIFIED", "DELETED") else None, body)
    runtime().initial_sync.confirm(plural, key_of(body))
