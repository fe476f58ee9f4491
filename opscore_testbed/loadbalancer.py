"""HAProxy (Debian's `haproxy`) in front of several sidecar replicas: what a Kubernetes
Service does for them in a cluster, as a real process on this machine.

Round robin over the replicas, a health check every 250 ms (`/healthz`; two failed in a
row take a replica out, one passed brings it back), and a request
whose connection to a replica is refused is sent to another one (`retry-on
conn-failure`): what kube-proxy and endpoint readiness give a Service, only faster. A
request already sent to a replica that dies is not retried (it may have been stored),
so the reports lost in a replica's death are exactly those in flight on it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from opscore_testbed.processes import ManagedProcess, StartStop, free_port, wait_until

INSTALL_HINT = "install it with: apt-get update && apt-get install -y haproxy"


def find_haproxy() -> Path | None:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    return Path(found) if found else None


def config(*, port: int, backends: list[int]) -> str:
    servers = "\n".join(
        f"    server sidecar-{i} 127.0.0.1:{p} check inter 250ms fall 2 rise 1"
        for i, p in enumerate(backends)
    )
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    timeout check 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
    retry-on conn-failure

frontend sidecars
    bind 127.0.0.1:{port}
    default_backend sidecars

backend sidecars
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


class SidecarBalancer(StartStop):
    """One HAProxy process for `backends` (sidecar ports); stop() stops it by its pid."""

    def __init__(self, *, backends: list[int], work_dir: Path) -> None:
        executable = find_haproxy()
        if executable is None:
            raise RuntimeError(f"haproxy not found; {INSTALL_HINT}")
        self.port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg = work_dir / "haproxy.cfg"
        cfg.write_text(config(port=self.port, backends=backends))
        self.process = ManagedProcess(
            "haproxy",
            [str(executable), "-db", "-f", str(cfg)],
            log_path=work_dir / "haproxy.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process.start()

        def answering() -> bool:
            if not self.process.is_running():
                raise RuntimeError(f"haproxy exited:\n{self.process.tail()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).is_success
            except httpx.HTTPError:
                return False

        wait_until(answering, timeout=30, interval=0.1, what="haproxy to serve")

    def stop(self) -> None:
        self.process.stop()
