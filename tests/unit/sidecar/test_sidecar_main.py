"""Settings from the environment, the `python -m opscore_sidecar` entry point, JSON logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from pytest_mock import MockerFixture
from sidecar_fakes import API_KEY, FakeKube, auth, report_body, settings, state_url

from opscore_logic.log_level import LEVELS
from opscore_sidecar.__main__ import main
from opscore_sidecar.app import create_app
from opscore_sidecar.logs import configure_logging
from opscore_sidecar.settings import SidecarSettings
from opscore_testbed.loadbalancer import config

pytestmark = pytest.mark.timeout(30)

ENV_NAMES = (
    "OPSCORE_API_KEY",
    "OPSCORE_API_KEYS_FILE",
    "OPSCORE_NAMESPACE",
    "KUBECONFIG",
    "OPSCORE_WEBHOOK_SECRET",
    "OPSCORE_SIDECAR_HOST",
    "OPSCORE_SIDECAR_PORT",
    "LOG_LEVEL",
    "OPSCORE_MAX_BODY_BYTES",
    "OPSCORE_MAX_CLOCK_SKEW_SECONDS",
    "OPSCORE_KEEPALIVE_SECONDS",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_settings_are_read_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPSCORE_NAMESPACE", "agents")
    env.setenv("OPSCORE_API_KEY", "k")
    env.setenv("KUBECONFIG", "/tmp/kubeconfig")
    env.setenv("OPSCORE_WEBHOOK_SECRET", "s")
    env.setenv("OPSCORE_SIDECAR_PORT", "9090")
    env.setenv("LOG_LEVEL", "debug")
    env.setenv("OPSCORE_MAX_BODY_BYTES", "4096")
    env.setenv("OPSCORE_MAX_CLOCK_SKEW_SECONDS", "30")
    loaded = SidecarSettings()
    assert loaded.namespace == "agents"
    assert loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == "k"
    assert loaded.kubeconfig == "/tmp/kubeconfig"
    assert (loaded.sidecar_host, loaded.sidecar_port) == ("127.0.0.1", 9090)
    assert loaded.log_level == "DEBUG"
    assert (loaded.max_body_bytes, loaded.max_clock_skew_seconds) == (4096, 30)


def test_settings_defaults(env: pytest.MonkeyPatch) -> None:
    loaded = SidecarSettings(namespace="agents", api_key="k")
    assert (loaded.sidecar_host, loaded.sidecar_port) == ("127.0.0.1", 8080)
    assert (loaded.max_body_bytes, loaded.max_clock_skew_seconds) == (65536, 300)
    assert loaded.webhook_secret is None


def test_settings_require_a_namespace(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPSCORE_API_KEY", "k")
    with pytest.raises(ValidationError, match="namespace"):
        SidecarSettings()


def test_settings_require_a_key_source(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPSCORE_NAMESPACE", "agents")
    env.setenv("OPSCORE_API_KEY", "")
    with pytest.raises(ValidationError, match="OPSCORE_API_KEY"):
        SidecarSettings()


def test_settings_reject_an_unknown_log_level(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="log level"):
        SidecarSettings(namespace="a", api_key="k", log_level="chatty")


def test_secrets_do_not_show_in_the_settings_repr(env: pytest.MonkeyPatch) -> None:
    loaded = SidecarSettings(namespace="a", api_key="k-123", webhook_secret="s-456")
    assert "k-123" not in repr(loaded)
    assert "s-456" not in repr(loaded)


def test_main_exits_2_on_invalid_configuration(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "namespace" in capsys.readouterr().err


def test_main_serves_the_app_with_one_uvicorn_worker(
    env: pytest.MonkeyPatch, mocker: MockerFixture, root_logging: None
) -> None:
    env.setenv("OPSCORE_NAMESPACE", "agents")
    env.setenv("OPSCORE_API_KEY", "k")
    run = mocker.patch("opscore_sidecar.__main__.uvicorn.run")
    main(["--port", "9999", "--host", "0.0.0.0"])
    kwargs = run.call_args.kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["workers"]) == ("0.0.0.0", 9999, 1)


def test_main_keeps_idle_connections_for_the_configured_time(
    env: pytest.MonkeyPatch, mocker: MockerFixture, root_logging: None
) -> None:
    env.setenv("OPSCORE_NAMESPACE", "agents")
    env.setenv("OPSCORE_API_KEY", "k")
    env.setenv("OPSCORE_KEEPALIVE_SECONDS", "90")
    run = mocker.patch("opscore_sidecar.__main__.uvicorn.run")
    main([])
    assert run.call_args.kwargs["timeout_keep_alive"] == 90


def test_idle_connections_outlive_the_clients_own_idle_limit(env: pytest.MonkeyPatch) -> None:
    # uvicorn's default (5 s) equals httpx's idle expiry, so the sidecar could close a
    # connection at the moment a client reuses it: that report fails with a ReadError, and
    # the SDK does not retry. The server must be the side that waits longer, behind the
    # test bed's HAProxy too.
    keepalive = SidecarSettings(namespace="agents", api_key="k").keepalive_seconds
    assert keepalive > (httpx.Limits().keepalive_expiry or 0)
    haproxy = config(port=1, backends=[2])
    idle_limits = [
        int(line.split()[-1].removesuffix("s"))
        for line in haproxy.splitlines()
        if line.strip().startswith(("timeout client", "timeout server"))
    ]
    assert idle_limits, "the HAProxy config sets its idle timeouts"
    assert keepalive > max(idle_limits)


async def test_lifespan_connects_with_kubeconfig_and_closes_the_client(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    kube = FakeKube()
    kube.aclose = mocker.AsyncMock()  # type: ignore[attr-defined]
    connect = mocker.patch("opscore_sidecar.app.KubeClient.from_kubeconfig", return_value=kube)
    app = create_app(settings(kubeconfig=str(tmp_path / "kubeconfig")))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 202
    assert connect.call_args.args[0] == str(tmp_path / "kubeconfig")
    kube.aclose.assert_awaited_once()  # type: ignore[attr-defined]


async def test_requests_before_startup_are_503() -> None:
    app = create_app(settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        response = await client.post(state_url(), json=report_body(), headers=auth())
    assert response.status_code == 503


async def test_log_lines_are_json_with_request_and_agent_ids(
    capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    configure_logging("DEBUG")
    app = create_app(settings(), FakeKube())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        await client.post(
            state_url(), json=report_body(), headers={**auth(), "X-Request-ID": "req-7"}
        )
        await client.post(state_url(), json=report_body(), headers=auth("wrong"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert lines
    assert all({"timestamp", "level", "name", "message"} <= set(line) for line in lines)
    assert any(line.get("agent_id") for line in lines)
    assert API_KEY not in json.dumps(lines)


def test_the_log_levels_accepted_are_exactly_the_standard_librarys() -> None:
    # A fresh interpreter: uvicorn adds its own TRACE level to this one.
    names = subprocess.run(
        [sys.executable, "-c", "import logging; print(*logging.getLevelNamesMapping())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(names) == LEVELS
