"""Process and deadline helpers: servers stop by pid, and waits fail with useful messages."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from opscore_testbed.processes import ManagedProcess, free_port, pid_alive, wait_until


def python(name: str, code: str, tmp_path: Path) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", code], log_path=tmp_path / f"{name}.log")


def test_stop_terminates_the_child_by_pid(tmp_path: Path) -> None:
    child = python("sleeper", "import time; time.sleep(60)", tmp_path)
    child.start()
    pid = child.pid
    assert child.is_running()

    code = child.stop()

    assert code == -signal.SIGTERM
    assert not child.is_running()
    assert not pid_alive(pid)
    assert child.stop() == code  # idempotent


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = python("stubborn", code, tmp_path)
    child.start()
    wait_until(lambda: "ignoring" in child.tail(), timeout=10, what="the handler to be installed")

    assert child.stop(timeout=0.5) == -signal.SIGKILL


def test_context_manager_stops_the_child(tmp_path: Path) -> None:
    with python("sleeper", "import time; time.sleep(60)", tmp_path) as child:
        assert child.is_running()
    assert not child.is_running()


def test_wait_until_times_out_naming_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match=r"^timed out after 0s waiting for the impossible$"):
        wait_until(lambda: False, timeout=0.2, what="the impossible")


def test_wait_until_returns_once_the_condition_holds() -> None:
    calls = iter([False, False, True])
    wait_until(lambda: next(calls), timeout=5, interval=0.01, what="the third call")


def test_wait_for_http_reports_the_log_tail_when_the_child_exits(tmp_path: Path) -> None:
    child = python(
        "crasher", "print('bind: address already in use'); raise SystemExit(3)", tmp_path
    )
    child.start()

    with pytest.raises(RuntimeError, match="exited with code 3") as excinfo:
        child.wait_for_http(f"http://127.0.0.1:{free_port()}/", timeout=30)

    assert "bind: address already in use" in str(excinfo.value)


def test_wait_for_http_returns_when_the_server_answers(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedProcess(
        "http.server",
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        log_path=tmp_path / "http.log",
        cwd=tmp_path,
    )
    with server:
        server.wait_for_http(f"http://127.0.0.1:{port}/", timeout=30)


def test_wait_for_http_times_out_with_the_log_tail(tmp_path: Path) -> None:
    with (
        python(
            "mute", "print('starting up', flush=True); import time; time.sleep(60)", tmp_path
        ) as child,
        pytest.raises(TimeoutError, match="waiting for mute") as excinfo,
    ):
        child.wait_for_http(f"http://127.0.0.1:{free_port()}/", timeout=2)

    assert "starting up" in str(excinfo.value)
