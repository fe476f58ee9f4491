"""The engine's budget rule: sum a run's usage and say whether it may dispatch more.

Part of the engine's pass (`opscore_logic.engine.reconcile`), run after the steps in
flight have been advanced (so an attempt that just ended has its usage counted) and
before any step is started. No I/O.
"""

from __future__ import annotations

from opscore_logic.budget import Budget, exceeded
from opscore_logic.decision import Decision, EngineEvent
from opscore_logic.usage import total
from opscore_logic.workflow_model import WorkflowStatus


def account_run(budget: Budget | None, status: WorkflowStatus, decision: Decision) -> str | None:
    """Set `status.usage` to the sum of the steps' usage; returns why the run is over its
    budget (None while within it, or without one).

    The `BudgetExceeded` Event is added in the pass whose usage first crosses the limit
    (the previous `status.usage` was within it), so it is posted once per crossing, not
    once per pass while the run waits for its running steps."""
    before = exceeded(budget, status.usage) if status.usage is not None else None
    summed = total(entry.usage for entry in status.steps)
    status.usage = None if summed.is_empty() else summed
    why = exceeded(budget, summed)
    if why is not None and before is None:
        decision.events.append(EngineEvent("BudgetExceeded", f"budget exceeded: {why}", "Warning"))
    return why
