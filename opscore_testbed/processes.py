"""Child processes and deadlines for the test bed.

The integration tests and the demo run real servers (etcd, kube-apiserver, the operator, the
sidecar, simulators) as local processes. Every one of them must be stoppable by its own pid
(never by name: other people's processes share the machine), must leave a log that error
messages can quote, and must be waited for with a deadline rather than a fixed sleep. This
module is the one place that knows how to do that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

__all__ = [
    "ManagedProcess",
    "free_port",
    "pid_alive",
    "terminate_pid",
    "wait_until",
]

log = logging.getLogger(__name__)

# Ports handed out by free_port() in this process. The kernel may give the same ephemeral port
# twice when the first receiver has not bound it yet; remembering them removes that race for
# servers started by one test session.
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Servers are started on free ports so that parallel sessions and leftovers of an earlier run
    never collide on fixed numbers.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find a free TCP port on 127.0.0.1")


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str,
) -> None:
    """Poll ``predicate`` until it returns true, or raise ``TimeoutError`` after ``timeout`` s.

    Tests wait for conditions, never for a fixed time: a fixed sleep is either too short on a
    busy 2-core machine or wasted time on a fast one. ``what`` names the condition so that a
    failure says what never happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a process that has not exited (a zombie counts as exited).

    Processes started detached (``opscore_testbed.controlplane up``) are no longer our children
    when they are stopped, so we cannot ``wait()`` for them; a zombie left for a non-reaping init
    must not look alive.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # The command name (field 2) is in parentheses and may contain spaces; the state follows it.
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def terminate_pid(pid: int, *, timeout: float = 10.0, name: str | None = None) -> None:
    """Stop a process that is not our child: SIGTERM, wait up to ``timeout``, then SIGKILL.

    Used to tear down a detached control plane from the pids it recorded. Signals go to the one
    pid only, never to a name or a group we did not create.
    """
    label = f"{name} (pid {pid})" if name else f"pid {pid}"
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        log.warning("%s ignored SIGTERM for %.0fs; sending SIGKILL", label, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), timeout=timeout, what=f"{label} to die")


class StartStop(ABC):
    """Started by `with`, and always stopped at its end (every process it started, by
    its own process id), whatever happened inside."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> object: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ManagedProcess(StartStop):
    """One server process: started in its own session, logged to a file, stopped by its pid.

    Its own session keeps a Ctrl-C in the terminal from reaching the servers directly, so the
    harness decides the order in which they stop (controller-manager, apiserver, then etcd).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "not started" if self._popen is None else f"pid {self._popen.pid}"
        return f"<ManagedProcess {self.name} {state}>"

    def start(self) -> None:
        """Start the process with stdout and stderr appended to ``log_path``."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started (pid {self._popen.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        log.debug("started %s (pid %d): %s", self.name, self._popen.pid, " ".join(self.argv))

    @property
    def pid(self) -> int:
        """The process id; raises if the process was never started."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has exited (negative: killed by that signal)."""
        if self._popen is None:
            return None
        return self._popen.poll()

    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the pid, wait up to ``timeout`` s, then SIGKILL; return the exit code.

        Safe to call more than once and on a process that was never started (returns None), so
        cleanup paths can call it unconditionally.
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is not None:
            return popen.returncode
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGTERM)
        try:
            return popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s (pid %d) ignored SIGTERM for %.0fs; killing", self.name, popen.pid, timeout
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGKILL)
        return popen.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the process now and reap it; for tests of crashes."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGKILL)
        popen.wait()

    def detach(self) -> None:
        """Forget the process without stopping it: it keeps running after we exit.

        ``controlplane up`` hands its servers over to a later ``controlplane down``, which
        stops them by the pids recorded in the state file.
        """
        if self._popen is not None:
            # Marking it reaped silences Popen's "still running" warning at interpreter exit.
            self._popen.returncode = 0
        self._popen = None

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log, to quote in error messages."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read()
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        text = data.decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_http(self, url: str, *, timeout: float, **httpx_kwargs: Any) -> None:
        """Poll ``url`` until it answers 2xx.

        Raises ``RuntimeError`` as soon as the process exits (no point waiting out the deadline
        for a server that crashed) and ``TimeoutError`` at the deadline; both quote the log.
        ``httpx_kwargs`` go to ``httpx.Client`` (``verify=``, ``headers=``, ...).
        """
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        httpx_kwargs.setdefault("timeout", 2.0)
        # Local servers never sit behind a proxy; an HTTPS_PROXY from CI must not capture them.
        httpx_kwargs.setdefault("trust_env", False)
        with httpx.Client(**httpx_kwargs) as client:
            while True:
                if not self.is_running():
                    raise RuntimeError(
                        f"{self.name} exited with code {self.returncode} before {url} answered;"
                        f" last lines of {self.log_path}:\n{self.tail()}"
                    )
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if response.is_success:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"timed out after {timeout:.0f}s waiting for {self.name} at {url}"
                        f" ({last}); last lines of {self.log_path}:\n{self.tail()}"
                    )
                time.sleep(0.1)
