"""Token and cost usage: what agents report, and the sums Ops-Core keeps of it.

An agent may put a `usage` object in a state report's `details` (see
docs/observability.md): token counts, the model, a cost and its currency. The sidecar
validates it with `ReportedUsage` (a bad one is answered 422, nothing stored); the engine
reads it back from the stored reports when an attempt ends and adds it to the step
(`status.steps[].usage`), the run (`status.usage`) and the agent's counters.

Costs are summed per currency (a run whose agents bill in USD and EUR keeps both); they
are added as decimals, not floats, so 0.1 + 0.2 stays 0.3, and stored as JSON numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opscore_logic.base import WireModel

USAGE_KEY = "usage"
# No real call spends more; a larger number is a bug on the agent's side, not usage.
MAX_TOKENS = 10**12
MAX_COST = Decimal("1000000000")
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")]


class ReportedUsage(BaseModel):
    """`details.usage` of a state report, as an agent sends it (snake_case, like the other
    detail keys `opscore_task_id` and `error_code`).

    Every field is optional, but what is given must be consistent: counts are
    non-negative integers, `total_tokens` equals `input_tokens + output_tokens` when all
    three are given (and is derived from them when only it is missing), and a `cost`
    needs its `currency`. Unknown keys are ignored, like everywhere in a report.
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "input_tokens": 1200,
                    "output_tokens": 350,
                    "model": "gpt-4o-mini",
                    "cost": 0.00042,
                    "currency": "USD",
                }
            ]
        },
    )

    input_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS, strict=True)
    output_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS, strict=True)
    total_tokens: int | None = Field(
        default=None,
        ge=0,
        le=2 * MAX_TOKENS,
        strict=True,
        description="input + output; derived when missing.",
    )
    model: str | None = Field(default=None, min_length=1, max_length=253)
    cost: Decimal | None = Field(
        default=None, ge=0, le=MAX_COST, allow_inf_nan=False, description="In `currency`."
    )
    currency: Currency | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ReportedUsage:
        parts = (self.input_tokens, self.output_tokens)
        if self.total_tokens is None:
            if any(p is not None for p in parts):
                self.total_tokens = sum(p or 0 for p in parts)
        elif None not in parts and self.total_tokens != sum(p or 0 for p in parts):
            raise ValueError(
                f"total_tokens ({self.total_tokens}) is not input_tokens + output_tokens "
                f"({self.input_tokens} + {self.output_tokens})"
            )
        if self.cost is not None and self.currency is None:
            raise ValueError("cost needs a currency (ISO 4217, e.g. USD)")
        return self


class Usage(WireModel):
    """Usage summed over reports (a step's, a run's or an agent's)."""

    input_tokens: int = Field(default=0, ge=0, description="Input (prompt) tokens.")
    output_tokens: int = Field(default=0, ge=0, description="Output (completion) tokens.")
    total_tokens: int = Field(default=0, ge=0, description="All tokens.")
    # Keys are not constrained in the schema (the API server refuses `propertyNames`);
    # they come from `ReportedUsage.currency`, which is.
    cost: dict[str, float] = Field(
        default_factory=dict, description="Cost per ISO 4217 currency code."
    )
    reports: int = Field(default=0, ge=0, description="Reports with usage counted in it.")

    def is_empty(self) -> bool:
        return self.reports == 0

    def plus(self, other: Usage) -> Usage:
        """The sum of two (neither is changed)."""
        cost = {c: Decimal(str(v)) for c, v in self.cost.items()}
        for currency, value in other.cost.items():
            cost[currency] = cost.get(currency, Decimal(0)) + Decimal(str(value))
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost={c: float(v) for c, v in sorted(cost.items())},
            reports=self.reports + other.reports,
        )


def as_usage(reported: ReportedUsage) -> Usage:
    cost = (
        {}
        if reported.cost is None or reported.currency is None
        else {reported.currency: float(reported.cost)}
    )
    return Usage(
        input_tokens=reported.input_tokens or 0,
        output_tokens=reported.output_tokens or 0,
        total_tokens=reported.total_tokens or 0,
        cost=cost,
        reports=1,
    )


def reported_usage(details: dict[str, Any]) -> ReportedUsage | None:
    """The report's usage, or None when it has none (or, stored by an older sidecar that
    did not validate it, one that does not parse: the sidecar refuses those now)."""
    raw = details.get(USAGE_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return ReportedUsage.model_validate(raw)
    except ValidationError:
        return None


def total(usages: Iterable[Usage | None]) -> Usage:
    result = Usage()
    for usage in usages:
        if usage is not None:
            result = result.plus(usage)
    return result
