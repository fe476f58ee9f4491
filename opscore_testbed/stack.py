"""The whole Ops-Core system as local processes on a control plane: the sidecar, the
AgentKit simulator with its agents, and the operator. Used by the demo, the integration
tests, the benchmarks and the fault suite, so they all run the same real thing."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import ManagedProcess, StartStop, free_port

REPO = Path(__file__).resolve().parent.parent
CRDS = REPO / "crds"
STARTUP_TIMEOUT = 60.0


def install_crds(cp: ControlPlane) -> None:
    """Apply the CRDs and wait until the API server serves them."""
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS), timeout=90)


@dataclass
class StackOptions:
    """How to run the stack (defaults suit the demo and the tests)."""

    api_key: str = "opscore-demo-key"
    webhook_secret: str = "opscore-demo-webhook-secret"
    agents: Sequence[str] = ("researcher:research,analysis", "writer:writing,analysis")
    task_seconds: float = 0.0
    failure_rate: float = 0.0
    agent_mode: str = "reference"
    operator_env: dict[str, str] = field(default_factory=dict)
    sidecar_env: dict[str, str] = field(default_factory=dict)
    sim_args: Sequence[str] = ()


class OpsCoreStack(StartStop):
    """Sidecar + AgentKit simulator + operator for one namespace; stop() stops all by pid."""

    def __init__(
        self,
        cp: ControlPlane,
        namespace: str,
        log_dir: Path,
        options: StackOptions | None = None,
    ) -> None:
        self.cp = cp
        self.namespace = namespace
        self.log_dir = log_dir
        self.options = options or StackOptions()
        self.sidecar_port = free_port()
        self.sim_port = free_port()
        self.operator_health_port = free_port()
        self.operator_metrics_port = free_port()
        self.sidecar: ManagedProcess | None = None
        self.sim: ManagedProcess | None = None
        self.operator: ManagedProcess | None = None
        self.front_url: str | None = None  # a load balancer before sidecar replicas
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def sidecar_url(self) -> str:
        return f"http://127.0.0.1:{self.sidecar_port}"

    @property
    def agents_url(self) -> str:
        """Where agents and AgentKit's webhook reach the sidecar: the sidecar itself, or
        the load balancer in front of its replicas when `front_url` is set."""
        return self.front_url or self.sidecar_url

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def start(self) -> None:
        try:
            self.start_sidecar()
            self.start_operator()
            self.start_sim()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in (self.sim, self.operator, self.sidecar):
            if proc is not None:
                proc.stop()

    # -- the three processes ------------------------------------------------------------

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = self.cp.env()
        env.update(
            {
                "OPSCORE_NAMESPACE": self.namespace,
                "OPSCORE_API_KEY": self.options.api_key,
                "OPSCORE_WEBHOOK_SECRET": self.options.webhook_secret,
                "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def start_sidecar(self) -> ManagedProcess:
        self.sidecar = self.spawn_sidecar("sidecar", port=self.sidecar_port)
        return self.sidecar

    def spawn_sidecar(
        self, name: str, *, port: int, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """One sidecar process on `port` (its log is `NAME.log`), started and ready.
        `start_sidecar` runs the stack's own; tests of replicas start more with this.
        `env` adds to (and overrides) the stack's sidecar environment for this one."""
        env = self._env(
            {
                "OPSCORE_SIDECAR_HOST": "127.0.0.1",
                "OPSCORE_SIDECAR_PORT": str(port),
                **self.options.sidecar_env,
                **(env or {}),
            }
        )
        process = ManagedProcess(
            name,
            [sys.executable, "-m", "opscore_sidecar"],
            log_path=self.log_dir / f"{name}.log",
            env=env,
        )
        return _started(process, f"http://127.0.0.1:{port}/readyz")

    def start_operator(self) -> ManagedProcess:
        self.operator = self.spawn_operator(
            "operator",
            health_port=self.operator_health_port,
            metrics_port=self.operator_metrics_port,
        )
        return self.operator

    def spawn_operator(
        self,
        name: str,
        *,
        health_port: int,
        metrics_port: int,
        env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        """One operator process (its log is `NAME.log`), started and answering /healthz.
        `start_operator` runs the stack's one operator; `replicas.OperatorReplicas` runs
        several leader-elected ones with this."""
        full_env = self._env(
            {
                "OPSCORE_AGENTKIT_URL": self.sim_url,
                "OPSCORE_METRICS_PORT": str(metrics_port),
                **self.options.operator_env,
                **(env or {}),
            }
        )
        process = ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "opscore_operator",
                "--namespace",
                self.namespace,
                f"--liveness=http://127.0.0.1:{health_port}/healthz",
            ],
            log_path=self.log_dir / f"{name}.log",
            env=full_env,
        )
        return _started(process, f"http://127.0.0.1:{health_port}/healthz")

    def start_sim(self) -> ManagedProcess:
        argv = [
            sys.executable,
            "-m",
            "opscore_testbed.agentkit_sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.sim_port),
            "--opscore-url",
            self.agents_url,
            "--api-key",
            self.options.api_key,
            "--webhook-url",
            f"{self.agents_url}/v1/opscore/internal/agent/notify",
            "--webhook-secret",
            self.options.webhook_secret,
            "--duration",
            str(self.options.task_seconds),
            "--failure-rate",
            str(self.options.failure_rate),
            "--mode",
            self.options.agent_mode,
            *self.options.sim_args,
        ]
        for agent in self.options.agents:
            argv += ["--agents", agent]
        self.sim = ManagedProcess(
            "agentkit-sim", argv, log_path=self.log_dir / "agentkit-sim.log", env=self._env({})
        )
        self.sim.start()
        self.sim.wait_for_http(f"{self.sim_url}/sim/agents", timeout=STARTUP_TIMEOUT)
        return self.sim

    def restart_operator(self, *, kill: bool = False) -> None:
        """Stop (or SIGKILL) the operator and start a new one, as a crash + restart."""
        if self.operator is not None:
            if kill:
                self.operator.kill()
            else:
                self.operator.stop()
        self.start_operator()

    # -- the simulator's books ----------------------------------------------------------

    def sim_tasks(self) -> dict[str, int]:
        """Every task the simulated agents received, counted by opscore_task_id."""
        resp = httpx.get(f"{self.sim_url}/sim/tasks", timeout=10, trust_env=False)
        resp.raise_for_status()
        counts: dict[str, int] = resp.json()["by_task_id"]
        return counts


def _started(process: ManagedProcess, ready_url: str) -> ManagedProcess:
    """Start `process` and wait for `ready_url`; a process that never gets ready is stopped
    (by its pid) before the error goes up, so no caller is left holding a stray one."""
    process.start()
    try:
        process.wait_for_http(ready_url, timeout=STARTUP_TIMEOUT)
    except BaseException:
        process.stop()
        raise
    return process
