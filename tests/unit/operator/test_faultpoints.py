"""Fault points: inert unless enabled, refused when misspelt, and each action does what
docs/reliability.md says (crash exits at once, hang stops the process, fail fails the call
the way a real failure there would)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from agentkit_fakes import FakeExchange, answer

import opscore_faultpoints as faultpoints
from opscore_operator.agentkit import AgentKitClient

MESSAGE = {"senderId": "opscore", "messageType": "workflow_task", "opscore_task_id": "t-1"}
SCHEDULED = {"status": "success", "data": {"dispatch_status": "scheduled"}, "error_code": None}

Enable = Callable[[str], None]


@pytest.fixture
def enable(monkeypatch: pytest.MonkeyPatch) -> Iterator[Enable]:
    """Reload the module with OPSCORE_FAULTPOINTS set (as a process start would read it),
    and reload it without on the way out."""

    def set_to(value: str) -> None:
        monkeypatch.setenv(faultpoints.ENV, value)
        importlib.reload(faultpoints)

    yield set_to
    monkeypatch.delenv(faultpoints.ENV, raising=False)
    importlib.reload(faultpoints)


def hit_in_child(spec: str, point: str) -> subprocess.Popen[bytes]:
    code = f"import opscore_faultpoints as f; f.hit({point!r}); print('passed')"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", faultpoints.ENV: spec},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_without_the_variable_every_point_is_a_no_op() -> None:
    assert faultpoints.enabled() == {}
    assert faultpoints.hit is faultpoints._off
    for name in faultpoints.POINTS:
        faultpoints.hit(name)


@pytest.mark.parametrize(
    "spec",
    ["operator.dispatch.nowhere=crash", "sidecar.report.after_write=explode", "x", "a=fail@0"],
)
def test_a_misspelt_point_or_action_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="OPSCORE_FAULTPOINTS"):
        faultpoints.parse(spec)


def test_fail_raises_on_every_pass(enable: Enable) -> None:
    point = "sidecar.report.after_write"
    enable(f"{point}=fail")
    for _ in range(2):
        with pytest.raises(faultpoints.FaultInjected, match=re.escape(point)):
            faultpoints.hit(point)
    faultpoints.hit("operator.dispatch.before_post")  # not enabled: passes


def test_at_n_fires_on_the_nth_pass_only(enable: Enable) -> None:
    enable("operator.dispatch.before_post=fail@2")
    faultpoints.hit("operator.dispatch.before_post")
    with pytest.raises(faultpoints.FaultInjected):
        faultpoints.hit("operator.dispatch.before_post")
    faultpoints.hit("operator.dispatch.before_post")


def test_crash_exits_the_process_at_once_with_its_own_code() -> None:
    child = hit_in_child("operator.dispatch.before_post=crash", "operator.dispatch.before_post")
    out, err = child.communicate(timeout=30)
    assert child.returncode == faultpoints.FAULT_EXIT_CODE
    assert b"passed" not in out
    assert b"fault point operator.dispatch.before_post: crash" in err


def test_hang_stops_the_process_until_it_is_killed() -> None:
    child = hit_in_child("sidecar.report.after_write=hang", "sidecar.report.after_write")
    try:
        deadline = time.monotonic() + 30
        line = b""
        while not line.startswith(b"fault point") and time.monotonic() < deadline:
            assert child.stderr is not None
            line = child.stderr.readline()
        assert b"fault point sidecar.report.after_write: hang" in line
        assert child.poll() is None  # still there, doing nothing
    finally:
        child.kill()
        out, _ = child.communicate(timeout=30)
    assert b"passed" not in out


async def test_failing_before_the_post_sends_nothing_and_reports_unreachable(
    enable: Enable,
) -> None:
    enable("operator.dispatch.before_post=fail")
    exchange = FakeExchange((answer(202, SCHEDULED),))
    agentkit = AgentKitClient("http://agentkit", exchange=exchange)
    result = await agentkit.run("agent-1", MESSAGE)
    await agentkit.aclose()
    assert (result.outcome, exchange.seen) == ("unreachable", [])


async def test_failing_after_the_202_reports_a_failure_although_agentkit_took_it(
    enable: Enable,
) -> None:
    enable("operator.dispatch.after_accepted=fail")
    exchange = FakeExchange((answer(202, SCHEDULED),))
    agentkit = AgentKitClient("http://agentkit", exchange=exchange)
    result = await agentkit.run("agent-1", MESSAGE)
    await agentkit.aclose()
    assert result.outcome == "unreachable"
    assert len(exchange.seen) == 1  # it was sent, once, and AgentKit scheduled it
