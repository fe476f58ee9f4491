"""Gauges read from the running operator on each scrape (no bookkeeping on the hot path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Gauge

if TYPE_CHECKING:
    from opscore_operator.runtime import Runtime

CACHED = Gauge("opscore_cached_objects", "Objects in the operator's cache, by kind.", ["kind"])
QUEUE_DEPTH = Gauge("opscore_workqueue_depth", "Keys waiting in a work queue.", ["queue"])
WAITING = Gauge("opscore_workflows_waiting_for_agents", "Workflows with a step Queued.")
IN_FLIGHT = Gauge("opscore_tasks_in_flight", "Tasks dispatched and not yet finished.")


def register(runtime: Runtime) -> None:
    """Bind the gauges to `runtime` (the latest runtime wins, for tests that start several)."""
    CACHED.labels("workflow").set_function(lambda: len(runtime.workflows))
    CACHED.labels("agent").set_function(lambda: len(runtime.agents))
    CACHED.labels("workflowtemplate").set_function(lambda: len(runtime.templates))
    QUEUE_DEPTH.labels("workflows").set_function(lambda: len(runtime.workflow_queue))
    QUEUE_DEPTH.labels("agents").set_function(lambda: len(runtime.agent_queue))
    WAITING.set_function(lambda: len(runtime.waiting))
    IN_FLIGHT.set_function(runtime.ledger.total_in_flight)
