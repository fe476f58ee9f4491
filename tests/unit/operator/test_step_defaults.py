"""The default attempt timeout: a step without `timeoutSeconds` gets the operator's, a
step with one keeps its own, and 0 turns the default off."""

from __future__ import annotations

import pytest

from opscore_logic.workflow_model import Step
from opscore_operator.settings import OperatorSettings
from opscore_operator.step_defaults import with_default_timeout


def steps() -> list[Step]:
    return [
        Step.model_validate({"name": "own", "capabilities": ["a"], "timeoutSeconds": 30}),
        Step.model_validate({"name": "none", "capabilities": ["a"]}),
    ]


def test_a_step_without_a_timeout_gets_the_default() -> None:
    resolved = with_default_timeout(steps(), 3600)
    assert resolved is not None
    assert [s.timeout_seconds for s in resolved] == [30, 3600]


def test_zero_leaves_steps_as_they_are() -> None:
    resolved = with_default_timeout(steps(), 0)
    assert resolved is not None
    assert [s.timeout_seconds for s in resolved] == [30, None]


def test_no_steps_stay_no_steps() -> None:
    assert with_default_timeout(None, 3600) is None


def test_the_operator_default_is_an_hour_and_settable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OperatorSettings().default_step_timeout_seconds == 3600
    monkeypatch.setenv("OPSCORE_DEFAULT_STEP_TIMEOUT_SECONDS", "0")
    assert OperatorSettings().default_step_timeout_seconds == 0
