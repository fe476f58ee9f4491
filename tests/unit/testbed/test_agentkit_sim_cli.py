"""The simulator's command line: agent options, environment fallbacks, JSON logs.

Most tests run the simulator for real next to a stand-in Ops-Core that records every state
report, webhook and forwarded message, and wait on conditions with deadlines instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import pytest
from sim_harness import (
    API_KEY,
    SECRET,
    OpsCoreRecorder,
    wait_for,
)

from opscore_testbed.agentkit_sim import (
    parse_agent_option,
    parse_args,
)

pytestmark = pytest.mark.timeout(60)


def test_agent_option_parses_name_and_capabilities() -> None:
    assert parse_agent_option("summarizer:summarize,translate") == (
        "summarizer",
        ["summarize", "translate"],
    )
    assert parse_agent_option("solo") == ("solo", [])


def test_cli_refuses_duplicate_agent_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--agents", "a:x", "--agents", "a:y"])

    assert "unique" in capsys.readouterr().err


def test_cli_falls_back_to_opscore_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCORE_API_KEY", "from-env")
    monkeypatch.setenv("OPSCORE_API_URL", "http://opscore:8080")
    monkeypatch.setenv("OPSCORE_WEBHOOK_URL", "http://opscore:8080/hook")
    monkeypatch.setenv("OPSCORE_WEBHOOK_SECRET", "s3cret")

    settings, _ = parse_args(["--agents", "a:x", "--agents", "b:y,z", "--mode", "correlated"])

    assert (settings.api_key, settings.opscore_url) == ("from-env", "http://opscore:8080")
    assert (settings.webhook_url, settings.webhook_secret) == ("http://opscore:8080/hook", "s3cret")
    assert [(a.name, a.capabilities, a.mode) for a in settings.agents] == [
        ("a", ["x"], "correlated"),
        ("b", ["y", "z"], "correlated"),
    ]


async def test_cli_serves_registers_agents_and_logs_json_lines(opscore: OpsCoreRecorder) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opscore_testbed.agentkit_sim",
        "--port",
        "0",
        "--opscore-url",
        opscore.url,
        "--api-key",
        API_KEY,
        "--webhook-url",
        f"{opscore.url}/v1/opscore/internal/agent/notify",
        "--webhook-secret",
        SECRET,
        "--agents",
        "summarizer:summarize,translate",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[bytes] = []
    try:
        url = None
        while url is None:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
            assert line, "the simulator exited before listening"
            lines.append(line)
            record = json.loads(line)
            if record["message"] == "AgentKit simulator listening":
                url = record["url"]
        async with httpx.AsyncClient(base_url=url) as client:
            [agent] = (await client.get("/sim/agents")).json()
        assert agent["capabilities"] == ["summarize", "translate"]
        await wait_for(lambda: opscore.states(agent["agentId"]) == ["idle"], what="first idle")
        await wait_for(lambda: opscore.of("webhook"), what="the webhook")
    finally:
        process.terminate()  # SIGTERM: a graceful shutdown
        rest, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0
    for line in lines + rest.splitlines():
        record = json.loads(line)
        assert {"timestamp", "level", "name", "message"} <= set(record)
