"""The command line of the local control plane: one that outlives the command
(`make cluster-up` / `make cluster-down`), recorded in a state directory so `down` and
`status` find its processes again (by pid and binary: pids get reused)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from opscore_testbed.controlplane import (
    KEEP_DIR_ENV,
    STATE_FILE,
    ControlPlane,
    ControlPlaneError,
)
from opscore_testbed.processes import pid_alive, terminate_pid


def _read_state(work_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((work_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    return state


def _is_our_process(entry: dict[str, Any]) -> bool:
    """Whether the recorded pid still runs the recorded binary (pids get reused)."""
    pid = int(entry["pid"])
    if not pid_alive(pid):
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return exe.removesuffix(" (deleted)") == os.path.realpath(str(entry["exe"]))


def _cmd_up(work_dir: Path) -> int:
    state = _read_state(work_dir)
    if state is not None:
        if any(_is_our_process(p) for p in state["processes"]):
            print(f"a control plane is already running from {work_dir}; see `status`/`down`")
            return 1
        shutil.rmtree(work_dir)  # a stale directory from a crashed run
    elif work_dir.exists() and any(work_dir.iterdir()):
        print(f"{work_dir} exists and is not a control-plane directory; refusing to use it")
        return 1
    control_plane = ControlPlane(work_dir)
    control_plane.start()
    control_plane.detach()
    kubeconfig = control_plane.kubeconfig
    print(f"control plane running at {control_plane.server}")
    print(f"logs: {work_dir / 'logs'}")
    print(f"export KUBECONFIG={kubeconfig}")
    print(f"stop it with: python -m opscore_testbed.controlplane_cli down --dir {work_dir}")
    return 0


def _cmd_down(work_dir: Path) -> int:
    state = _read_state(work_dir)
    if state is None:
        print(f"no control plane recorded in {work_dir}; nothing to stop")
        return 0
    for entry in reversed(state["processes"]):
        if _is_our_process(entry):
            terminate_pid(int(entry["pid"]), name=entry["name"])
            print(f"stopped {entry['name']} (pid {entry['pid']})")
        else:
            print(f"{entry['name']} (pid {entry['pid']}) was not running")
    if os.environ.get(KEEP_DIR_ENV) == "1":
        print(f"kept {work_dir} (${KEEP_DIR_ENV}=1)")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
        print(f"removed {work_dir}")
    return 0


def _cmd_status(work_dir: Path) -> int:
    state = _read_state(work_dir)
    if state is None:
        print(f"no control plane recorded in {work_dir}")
        return 3
    healthy = True
    for entry in state["processes"]:
        running = _is_our_process(entry)
        healthy &= running
        print(f"{entry['name']:<24} pid {entry['pid']:<8} {'running' if running else 'STOPPED'}")
    pki = work_dir / "pki"
    try:
        context = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        response = httpx.get(
            f"{state['server']}/readyz", verify=context, timeout=5.0, trust_env=False
        )
        ready = f"HTTP {response.status_code} {response.text.strip()[:60]}"
        healthy &= response.is_success
    except (OSError, httpx.HTTPError) as exc:
        ready = f"unreachable ({exc})"
        healthy = False
    print(f"{state['server']}/readyz: {ready}")
    print(f"export KUBECONFIG={state['kubeconfig']}")
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``opscore-cluster`` / ``python -m opscore_testbed.controlplane_cli``."""
    parser = argparse.ArgumentParser(
        prog="opscore-cluster", description="A local Kubernetes control plane without Docker."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--dir", type=Path, default=Path(".cluster"), help="state directory (default .cluster)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll
    work_dir: Path = args.dir.resolve()
    try:
        if args.command == "up":
            return _cmd_up(work_dir)
        if args.command == "down":
            return _cmd_down(work_dir)
        return _cmd_status(work_dir)
    except (ControlPlaneError, RuntimeError, TimeoutError) as exc:
        # RuntimeError/TimeoutError: a process died or missed its deadline; the message
        # quotes its log, which a traceback would only bury.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
