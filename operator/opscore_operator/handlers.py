"""The kopf adapter: watch Workflows, Agents and WorkflowTemplates and hand every event
to the runtime. Run with `kopf run -m opscore_operator.handlers --namespace NS`.

Only `on.event` handlers are used: they are level-based (the runtime decides from the
whole observed state), they write nothing of kopf's own to the objects (no progress
annotations, no finalizers), and they add no wait on the report -> dispatch path.
"""

from __future__ import annotations

from typing import Any, cast

import kopf

from opscore_kube.resources import GROUP, VERSION
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
    settings.batching.batch_window = 0.005  # kopf's default 0.1 s would sit on every step
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    _runtime = Runtime(OperatorSettings())
    _runtime.start()


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    if _runtime is not None:
        await _runtime.stop()


@kopf.on.probe(id="workqueue")
def workqueue_depth(**_: Any) -> int:
    return len(runtime().workflow_queue)


@kopf.on.event(GROUP, VERSION, "workflows")
def workflow_event(event: kopf.RawEvent, **_: Any) -> None:
    runtime().on_workflow(event.get("type"), cast(dict[str, Any], event["object"]))


@kopf.on.event(GROUP, VERSION, "agents")
def agent_event(event: kopf.RawEvent, **_: Any) -> None:
    runtime().on_agent(event.get("type"), cast(dict[str, Any], event["object"]))


@kopf.on.event(GROUP, VERSION, "workflowtemplates")
def template_event(event: kopf.RawEvent, **_: Any) -> None:
    runtime().on_template(event.get("type"), cast(dict[str, Any], event["object"]))
