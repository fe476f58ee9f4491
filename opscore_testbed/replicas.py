"""Ops-Core with replicas, as real processes: leader-elected operators (and the faults
high availability must survive: SIGKILL, SIGTERM, SIGSTOP past the lease, i.e. a paused
leader that wakes up believing it still leads), and sidecar replicas behind HAProxy."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from opscore_testbed.loadbalancer import SidecarBalancer
from opscore_testbed.processes import ManagedProcess, StartStop, free_port, wait_until
from opscore_testbed.stack import OpsCoreStack

LEASE_NAME = "opscore-operator"


@dataclass(frozen=True)
class LeaseTimes:
    """The election's durations, in seconds (the operator's defaults: 15/10/2)."""

    lease: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    def env(self) -> dict[str, str]:
        return {
            "OPSCORE_LEASE_DURATION_SECONDS": str(self.lease),
            "OPSCORE_RENEW_DEADLINE_SECONDS": str(self.renew_deadline),
            "OPSCORE_RETRY_PERIOD_SECONDS": str(self.retry),
        }


class OperatorReplicas(StartStop):
    """`count` operators named `operator-0`..., each with leader election on and its own
    health and metrics ports; stop() stops every one of them by pid."""

    def __init__(self, stack: OpsCoreStack, *, count: int = 2, times: LeaseTimes) -> None:
        self.stack = stack
        self.count = count
        self.times = times
        self.processes: dict[str, ManagedProcess] = {}
        self.metrics_ports: dict[str, int] = {}

    def start(self) -> None:
        try:
            for index in range(self.count):
                self.start_replica(f"operator-{index}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name, process in self.processes.items():
            if self._stopped(name):
                os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot die of TERM
            process.stop()

    def start_replica(self, name: str) -> ManagedProcess:
        """Start (or start again, after it died) the replica `name`."""
        old = self.processes.get(name)
        if old is not None and old.is_running():
            raise RuntimeError(f"{name} is still running (pid {old.pid})")
        self.metrics_ports[name] = free_port()
        process = self.stack.spawn_operator(
            name,
            health_port=free_port(),
            metrics_port=self.metrics_ports[name],
            env={
                "OPSCORE_LEADER_ELECTION": "true",
                "OPSCORE_LEADER_ELECTION_NAMESPACE": self.stack.namespace,
                "POD_NAME": name,
                **self.times.env(),
            },
        )
        self.processes[name] = process
        return process

    # -- who leads ----------------------------------------------------------------------

    def holder(self) -> str:
        """The Lease's holder as the API server has it ("" when released or absent)."""
        out = self.stack.cp.kubectl(
            "get",
            "lease",
            LEASE_NAME,
            "-n",
            self.stack.namespace,
            "--ignore-not-found",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ).stdout
        return out.strip()

    def wait_for_leader(self, *, other_than: str = "", timeout: float = 60.0) -> str:
        """Wait until a running replica other than `other_than` holds the Lease."""
        found: list[str] = []

        def led() -> bool:
            name = self.holder()
            process = self.processes.get(name)
            if name and name != other_than and process is not None and process.is_running():
                found[:] = [name]
                return True
            return False

        wait_until(led, timeout=timeout, interval=0.05, what="a new leader")
        return found[0]

    # -- faults -------------------------------------------------------------------------

    def sigkill(self, name: str) -> float:
        """SIGKILL `name`; the monotonic moment of the kill."""
        self.processes[name].kill()
        return time.monotonic()

    def sigterm(self, name: str) -> float:
        """SIGTERM `name` (a rolling update) without waiting; the moment it was sent."""
        os.kill(self.processes[name].pid, signal.SIGTERM)
        return time.monotonic()

    def pause(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGCONT)

    def _stopped(self, name: str) -> bool:
        """Whether the process is in state T (stopped by a signal)."""
        process = self.processes[name]
        if not process.is_running():
            return False
        try:
            with open(f"/proc/{process.pid}/stat", encoding="ascii") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "T"
        except OSError:
            return False


class HighlyAvailableStack(StartStop):
    """The deployment of deploy/instance as local processes: `sidecars` sidecar replicas
    behind HAProxy (the Service), the AgentKit simulator reporting through it, and
    `operators` leader-elected operators. stop() stops every process by its pid."""

    def __init__(
        self,
        stack: OpsCoreStack,
        *,
        operators: int = 2,
        sidecars: int = 2,
        times: LeaseTimes | None = None,
    ) -> None:
        self.stack = stack
        self.sidecar_ports = [free_port() for _ in range(sidecars)]
        self.sidecars: list[ManagedProcess | None] = [None] * sidecars
        self.balancer = SidecarBalancer(
            backends=self.sidecar_ports, work_dir=stack.log_dir / "haproxy"
        )
        self.operators = OperatorReplicas(stack, count=operators, times=times or LeaseTimes())

    def start(self) -> None:
        try:
            for index in range(len(self.sidecars)):
                self.start_sidecar(index)
            self.balancer.start()
            self.stack.front_url = self.balancer.url
            self.stack.start_sim()
            self.operators.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.operators.stop()
        if self.stack.sim is not None:
            self.stack.sim.stop()
        self.balancer.stop()
        for process in self.sidecars:
            if process is not None:
                process.stop()

    def start_sidecar(self, index: int) -> ManagedProcess:
        """Start (or start again) sidecar replica `index` on its own port."""
        process = self.stack.spawn_sidecar(f"sidecar-{index}", port=self.sidecar_ports[index])
        self.sidecars[index] = process
        return process

    def kill_sidecar(self, index: int) -> None:
        process = self.sidecars[index]
        if process is not None:
            process.kill()
