"""Jaeger (v2, all-in-one) as a real trace backend for the tests, the demo and the bench.

`hack/build-jaeger.sh` (`make jaeger-bin`) builds `github.com/jaegertracing/jaeger/cmd/jaeger`
from the Go module proxy into the per-user cache once. `Jaeger` runs it with in-memory
storage, an OTLP/HTTP receiver and the query API, each on a free port of 127.0.0.1 (its
stock configuration would take fixed ports that parallel sessions share), and stops it by
its pid. The binary built from the published module has no UI assets (they are built by
the Jaeger UI's own toolchain): the query API (`/api/traces/{id}`) is what is served.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from opscore_testbed.processes import ManagedProcess, StartStop, free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-jaeger.sh"
BIN_ENV = "OPSCORE_JAEGER_BIN"
STARTUP_TIMEOUT = 60.0


class JaegerError(RuntimeError):
    """Jaeger could not be built, found or started, or its API answered nonsense."""


def find_jaeger() -> Path:
    """The jaeger binary: `$OPSCORE_JAEGER_BIN`, else the one `hack/build-jaeger.sh` builds
    (or finds) in the cache. Raises `JaegerError` saying what to run when neither works."""
    override = os.environ.get(BIN_ENV)
    if override:
        path = Path(override)
    else:
        result = subprocess.run(
            [str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False, cwd=REPO_ROOT
        )
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines:
            raise JaegerError(
                f"{BUILD_SCRIPT} failed (exit code {result.returncode}, messages above); run"
                f" `make jaeger-bin` to retry, or set ${BIN_ENV} to a jaeger binary"
            )
        path = Path(lines[-1]) / "jaeger"
    if not os.access(path, os.X_OK):
        raise JaegerError(f"{path} is not an executable jaeger binary")
    return path


def config(*, otlp_port: int, query_port: int, query_grpc_port: int) -> str:
    """All-in-one with nothing but what the tests use: OTLP/HTTP in, memory, query API out.
    No clock-skew adjustment: spans of one run come from several processes of one
    machine, and their times are asserted as sent."""
    return f"""service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    max_clock_skew_adjust: 0s
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{query_grpc_port}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


@dataclass(frozen=True, slots=True)
class FoundSpan:
    """A span as Jaeger's query API returns it, with what the tests assert on."""

    span_id: str
    name: str
    service: str
    parent_span_id: str | None
    tags: dict[str, Any]
    #: the emitting process's resource attributes (`service.instance.id`, ...)
    process_tags: dict[str, Any]
    events: list[str]


class Jaeger(StartStop):
    """One Jaeger process; `otlp_endpoint` goes into `OTEL_EXPORTER_OTLP_ENDPOINT`."""

    def __init__(self, *, work_dir: Path, binary: Path | None = None) -> None:
        self.binary = binary or find_jaeger()
        self.otlp_port = free_port()
        self.query_port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg = work_dir / "jaeger.yaml"
        cfg.write_text(
            config(
                otlp_port=self.otlp_port,
                query_port=self.query_port,
                query_grpc_port=free_port(),
            )
        )
        self.process = ManagedProcess(
            "jaeger",
            [str(self.binary), "--config", f"file:{cfg}"],
            log_path=work_dir / "jaeger.log",
            # Its own telemetry would export to the default localhost:4317 (and hold up
            # its exit retrying): Jaeger traces nothing of itself here.
            env={**os.environ, "OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "none"},
        )

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def exporter_env(self, *, schedule_delay_ms: int = 200) -> dict[str, str]:
        """What a process needs to export to this Jaeger. A short batch delay: a SIGKILL
        loses what is queued, and a test that kills a process waits for less."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": str(schedule_delay_ms),
        }

    def start(self) -> None:
        self.process.start()

        def answering() -> bool:
            if not self.process.is_running():
                raise JaegerError(f"jaeger exited:\n{self.process.tail()}")
            try:
                resp = httpx.get(f"{self.query_url}/api/services", timeout=1, trust_env=False)
            except httpx.HTTPError:
                return False
            return resp.is_success

        wait_until(answering, timeout=STARTUP_TIMEOUT, interval=0.1, what="jaeger to serve")

    def stop(self) -> None:
        self.process.stop()

    def trace(self, trace_id: str) -> list[FoundSpan]:
        """Every span Jaeger holds for `trace_id` (32 hex digits); [] when it has none yet."""
        resp = httpx.get(f"{self.query_url}/api/traces/{trace_id}", timeout=5, trust_env=False)
        if resp.status_code == 404:
            return []
        resp.raise_for_status()
        data = resp.json().get("data") or []
        if not data:
            return []
        if len(data) != 1:
            raise JaegerError(f"/api/traces/{trace_id} answered {len(data)} traces, not one")
        return trace_spans(data[0])


def trace_spans(trace: dict[str, Any]) -> list[FoundSpan]:
    """The spans of one trace object of the query API's answer (`data[0]`)."""
    processes = trace.get("processes") or {}
    found = []
    for span in trace.get("spans") or []:
        parent = next(
            (
                ref["spanID"]
                for ref in span.get("references") or []
                if ref.get("refType") == "CHILD_OF" and ref.get("traceID") == span["traceID"]
            ),
            None,
        )
        process = processes.get(span.get("processID")) or {}
        events = [
            str(field.get("value"))
            for log in span.get("logs") or []
            for field in log.get("fields") or []
            if field.get("key") == "event"
        ]
        found.append(
            FoundSpan(
                span["spanID"],
                span["operationName"],
                process.get("serviceName", ""),
                parent,
                _tags(span.get("tags")),
                _tags(process.get("tags")),
                events,
            )
        )
    return found


def _tags(tags: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {tag["key"]: tag.get("value") for tag in tags or []}
