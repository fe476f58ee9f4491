"""`details.usage`: what an agent may report, and the 422 messages for what it may not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from opscore_logic.usage import ReportedUsage, as_usage, total
from opscore_sidecar.schemas import StateReport


def state_report(usage: Any) -> StateReport:
    return StateReport.model_validate(
        {
            "agentId": "a",
            "timestamp": "2026-11-25T08:34:07Z",
            "state": "idle",
            "details": {"usage": usage},
        }
    )


def test_total_tokens_is_derived_from_input_and_output() -> None:
    assert ReportedUsage.model_validate({"input_tokens": 3, "output_tokens": 4}).total_tokens == 7


def test_a_report_is_stored_as_sent_not_with_the_derived_total() -> None:
    assert state_report({"input_tokens": 3}).details == {"usage": {"input_tokens": 3}}


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"input_tokens": -1}, "input_tokens: Input should be greater than or equal to 0"),
        ({"output_tokens": 1.5}, "output_tokens: Input should be a valid integer"),
        ({"input_tokens": True}, "input_tokens: Input should be a valid integer"),
        (
            {"input_tokens": 1, "output_tokens": 2, "total_tokens": 4},
            "total_tokens (4) is not input_tokens + output_tokens (1 + 2)",
        ),
        ({"cost": 1}, "cost needs a currency"),
        ({"cost": -0.1, "currency": "USD"}, "cost: Input should be greater than or equal to 0"),
        ({"cost": "NaN", "currency": "USD"}, "cost: Input should be a finite number"),
        ({"cost": 1, "currency": "usd"}, "currency: String should match pattern"),
        ({"model": ""}, "model: String should have at least 1 character"),
        ("many", "details.usage must be an object, not str"),
    ],
)
def test_bad_usage_is_refused_with_the_field_and_why(usage: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        state_report(usage)
    assert message in str(caught.value)


def test_costs_add_up_per_currency_as_decimals() -> None:
    reports = [
        ReportedUsage.model_validate({"cost": "0.1", "currency": "USD"}),
        ReportedUsage.model_validate({"cost": 0.2, "currency": "USD"}),
        ReportedUsage.model_validate({"cost": 2, "currency": "EUR"}),
    ]
    summed = total(as_usage(r) for r in reports)
    assert summed.cost == {"EUR": 2.0, "USD": 0.3}
    assert Decimal(str(summed.cost["USD"])) == Decimal("0.3")
    assert summed.reports == 3
