"""`python -m opscore_sidecar` / `opscore-sidecar`: serve the sidecar with uvicorn.

One worker on purpose: the per-agent report writer keeps each agent's stored list in
memory and serialises its writes, which holds only within one process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from opscore_sidecar.app import create_app
from opscore_sidecar.logs import configure_logging
from opscore_sidecar.settings import SidecarSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="opscore-sidecar",
        description=(
            "Ops-Core sidecar: agents' state reports and AgentKit's registration webhook. "
            "Configured by environment (OPSCORE_NAMESPACE, OPSCORE_API_KEY / "
            "OPSCORE_API_KEYS_FILE, OPSCORE_WEBHOOK_SECRET, KUBECONFIG, LOG_LEVEL, ...); "
            "flags override the matching variables."
        ),
    )
    parser.add_argument("--host", help="env OPSCORE_SIDECAR_HOST (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="env OPSCORE_SIDECAR_PORT (default 8080)")
    parser.add_argument("--namespace", help="env OPSCORE_NAMESPACE")
    parser.add_argument("--log-level", help="env LOG_LEVEL (default INFO)")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> SidecarSettings:
    overrides = {
        key: value
        for key, value in {
            "sidecar_host": args.host,
            "sidecar_port": args.port,
            "namespace": args.namespace,
            "log_level": args.log_level,
        }.items()
        if value is not None
    }
    return SidecarSettings(**overrides)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: read settings, log JSON to stdout, serve until SIGTERM/SIGINT."""
    args = parse_args(argv)
    try:
        settings = load_settings(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        print(f"opscore-sidecar: invalid configuration: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.sidecar_host,
        port=settings.sidecar_port,
        workers=1,
        log_config=None,
        access_log=settings.access_log,
        timeout_keep_alive=settings.keepalive_seconds,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
