"""Run budgets: `spec.budget` (or the template's default) caps a run's accounted usage.

Checked by the engine after the steps in flight have been advanced and before anything
is dispatched: once a run's usage (the sum of its steps' usage, counted when attempts
end) reaches a limit, no further step is dispatched. With `onExceeded: Fail` (the
default) the run fails with `BudgetExceeded` once the steps already running have
finished (their usage is still counted); with `Suspend` it stays `Suspended` until the
budget is raised or removed.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import ConfigDict, Field

from opscore_logic.base import WireModel
from opscore_logic.usage import Currency, Usage


class OnExceeded(StrEnum):
    FAIL = "Fail"
    SUSPEND = "Suspend"


class Budget(WireModel):
    """Limits on a run's usage; set at least one of maxTokens and maxCost."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.maxTokens) || has(self.maxCost)",
                    "message": "set maxTokens, maxCost or both",
                },
                {
                    "rule": "!has(self.maxCost) || has(self.currency)",
                    "message": "maxCost needs a currency",
                },
            ]
        }
    )

    max_tokens: int | None = Field(
        default=None, ge=0, description="The run stops dispatching once its totalTokens reach this."
    )
    max_cost: float | None = Field(
        default=None, ge=0, description="The run stops dispatching once its cost reaches this."
    )
    currency: Currency | None = Field(
        default=None, description="Currency of maxCost (ISO 4217); costs in others do not count."
    )
    on_exceeded: OnExceeded = Field(
        default=OnExceeded.FAIL,
        description="Fail: the run fails with BudgetExceeded. Suspend: it stays Suspended.",
    )


def exceeded(budget: Budget | None, usage: Usage) -> str | None:
    """Why `usage` is over `budget` (for the run's message and Event), or None."""
    if budget is None:
        return None
    if budget.max_tokens is not None and usage.total_tokens >= budget.max_tokens:
        return f"used {usage.total_tokens} tokens of a budget of {budget.max_tokens}"
    if budget.max_cost is not None and budget.currency is not None:
        spent = Decimal(str(usage.cost.get(budget.currency, 0.0)))
        if spent >= Decimal(str(budget.max_cost)):
            return f"spent {spent} {budget.currency} of a budget of {budget.max_cost:g}"
    return None
