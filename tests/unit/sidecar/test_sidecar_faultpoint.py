"""The sidecar's fault point after a report is stored: failing it answers 500 although
the report is in the Agent's status (what an agent sees when the answer is lost)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from sidecar_fakes import AGENT_ID, FakeKube, auth, client_for, report_body, state_url

import opscore_faultpoints as faultpoints

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def failing_after_write(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(faultpoints.ENV, "sidecar.report.after_write=fail")
    importlib.reload(faultpoints)
    yield
    monkeypatch.delenv(faultpoints.ENV)
    importlib.reload(faultpoints)


@pytest.mark.usefixtures("failing_after_write")
async def test_failing_after_the_write_answers_500_for_a_stored_report() -> None:
    kube = FakeKube()
    async with client_for(kube) as (client, _):
        response = await client.post(state_url(), json=report_body(state="idle"), headers=auth())
    assert response.status_code == 500
    assert "sidecar.report.after_write" in response.json()["detail"]
    assert [r["state"] for r in kube.reports(AGENT_ID)] == ["idle"]


async def test_without_the_variable_the_same_report_is_answered_202() -> None:
    kube = FakeKube()
    async with client_for(kube) as (client, _):
        response = await client.post(state_url(), json=report_body(state="idle"), headers=auth())
    assert response.status_code == 202
