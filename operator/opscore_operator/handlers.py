"""The kopf adapter: the process's startup, cleanup and probes.
Run with `kopf run -m opscore_operator.handlers --namespace NS`.

Kopf runs the process (its CLI, the startup and cleanup handlers, the liveness and
`workqueue` probes); it watches nothing. The runtime's own informers list and watch
Workflows, Agents, WorkflowTemplates, WorkflowSchedules and Approvals (`informer.py` says
why, and `Runtime.sync` how the first listing comes before any reconcile, as an informer's
cache sync).
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import kopf

from opscore_operator.logs import configure_logging
from opscore_operator.namespaces import watched_namespaces
from opscore_operator.runtime import Runtime
from opscore_operator.settings import OperatorSettings

_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator has not started")
    return _runtime


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _runtime
    settings.posting.enabled = False  # our EventRecorder posts, off the hot path
    # Serve the --namespace names as given: without this, kopf lists and watches
    # Namespaces and CRDs cluster-wide, rights a namespaced install does not grant
    # (deploy/instance/rbac.yaml).
    settings.scanning.disabled = True
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
