"""Gauges read from the running operator on each scrape (no bookkeeping on the hot path).

Counters and histograms of events live next to what they count: reconciles and step
advance in `workflow_reconciler.py`, agent status writes and reconciles in
`agent_reconciler.py`, dispatches in `agentkit.py`, Events in `events.py`, API requests in
`opscore_kube.client`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric

from opscore_logic.workflow_model import WorkflowPhase

if TYPE_CHECKING:
    from opscore_operator.runtime import Runtime

CACHED = Gauge("opscore_cached_objects", "Objects in the operator's cache, by kind.", ["kind"])
QUEUE_DEPTH = Gauge("opscore_workqueue_depth", "Keys waiting in a work queue.", ["queue"])
WAITING = Gauge("opscore_workflows_waiting_for_agents", "Workflows with a step Queued.")
IN_FLIGHT = Gauge("opscore_tasks_in_flight", "Tasks dispatched and not yet finished.")


UNKNOWN_PHASE = "Unknown"


class WorkflowPhases:
    """`opscore_workflows{phase}`: the cached Workflows counted by `status.phase` at scrape
    time (a Workflow not reconciled yet counts as Pending; a phase this version does not
    know, as Unknown). Every phase is always exported, 0 included, so a rate or an alert
    on a phase never sees its series vanish."""

    NAME = "opscore_workflows"
    HELP = "Workflows in the operator's cache, by status.phase."

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["phase"])

    def collect(self) -> Iterator[Metric]:
        counts = dict.fromkeys([phase.value for phase in WorkflowPhase] + [UNKNOWN_PHASE], 0)
        runtime = self.runtime
        if runtime is not None:
            cache = runtime.workflows
            # Scrapes run in the metrics server's thread: iterate over a copy of the keys.
            for key in cache.snapshot_keys():
                body = cache.get(key)
                if body is None:
                    continue
                phase = (body.get("status") or {}).get("phase") or WorkflowPhase.PENDING.value
                counts[phase if phase in counts else UNKNOWN_PHASE] += 1
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["phase"])
        for phase, count in counts.items():
            family.add_metric([phase], count)
        yield family


WORKFLOW_PHASES = WorkflowPhases()
REGISTRY.register(WORKFLOW_PHASES)


def register(runtime: Runtime) -> None:
    """Bind the gauges to `runtime` (the latest runtime wins, for tests that start several)."""
    WORKFLOW_PHASES.runtime = runtime
    CACHED.labels("workflow").set_function(lambda: len(runtime.workflows))
    CACHED.labels("agent").set_function(lambda: len(runtime.agents))
    CACHED.labels("workflowtemplate").set_function(lambda: len(runtime.templates))
    QUEUE_DEPTH.labels("workflows").set_function(lambda: len(runtime.workflow_queue))
    QUEUE_DEPTH.labels("agents").set_function(lambda: len(runtime.agent_queue))
    WAITING.set_function(lambda: len(runtime.waiting))
    IN_FLIGHT.set_function(runtime.ledger.total_in_flight)
