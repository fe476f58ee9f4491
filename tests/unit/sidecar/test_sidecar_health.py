"""Probes and metrics: /healthz, /readyz, /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from sidecar_fakes import FakeKube, client_for

pytestmark = pytest.mark.timeout(30)


async def test_healthz_answers_200() -> None:
    async with client_for(FakeKube()) as (client, _):
        response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_healthz_stays_200_when_the_api_server_is_down() -> None:
    kube = FakeKube()
    kube.down = True
    async with client_for(kube) as (client, _):
        assert (await client.get("/healthz")).status_code == 200


async def test_readyz_answers_200_when_api_server_and_keys_are_there() -> None:
    async with client_for(FakeKube()) as (client, _):
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_is_503_when_the_api_server_is_unreachable() -> None:
    kube = FakeKube()
    kube.ready = False
    async with client_for(kube) as (client, _):
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "kubernetes" in response.json()["detail"]


async def test_readyz_is_503_without_any_api_key(tmp_path: Path) -> None:
    async with client_for(FakeKube(), api_key=None, api_keys_file=tmp_path / "none") as (
        client,
        _,
    ):
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "apiKeys" in response.json()["detail"]


async def test_metrics_expose_the_sidecar_series() -> None:
    async with client_for(FakeKube()) as (client, _):
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in (
        "opscore_sidecar_reports_total",
        "opscore_sidecar_report_write_seconds",
        "opscore_sidecar_webhooks_total",
    ):
        assert f"# TYPE {name}" in response.text
