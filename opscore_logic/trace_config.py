"""Whether to export traces, from the standard OpenTelemetry environment variables.

Tracing costs nothing unless asked for: no exporter, no thread and no span are made when
no OTLP endpoint is configured. The rule is pure (the caller passes the environment), so
both processes share it and a unit test pins it. The variables are the SDK's own
(`OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the `..._PROTOCOL` pair): the SDK then reads the
rest (headers, timeout, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: What Ops-Core ships an exporter for: OTLP over HTTP with protobuf bodies.
SUPPORTED_PROTOCOL = "http/protobuf"


@dataclass(frozen=True, slots=True)
class TraceExport:
    """Export or not, and the sentence the process logs at startup saying why."""

    enabled: bool
    why: str
    #: where spans are POSTed: the traces endpoint as given, else the general one plus
    #: `/v1/traces` (as the SDK does); "" when off
    traces_url: str = ""


def trace_export(env: Mapping[str, str]) -> TraceExport:
    """Decide from `env`. Anything that cannot work (another exporter, the gRPC protocol)
    turns tracing off with a reason instead of failing the process: traces are a view,
    and a typo in one must never stop workflows."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TraceExport(False, "OTEL_SDK_DISABLED=true")
    exporters = [
        name.strip().lower()
        for name in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    ]
    if "none" in exporters or not exporters:
        return TraceExport(False, "OTEL_TRACES_EXPORTER=none")
    if "otlp" not in exporters:
        return TraceExport(
            False, f"OTEL_TRACES_EXPORTER={','.join(exporters)}: only otlp is supported"
        )
    traces_endpoint = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    endpoint = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if not traces_endpoint and not endpoint:
        return TraceExport(False, "no OTEL_EXPORTER_OTLP_ENDPOINT: traces are not exported")
    url = traces_endpoint or f"{endpoint.rstrip('/')}/v1/traces"
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or SUPPORTED_PROTOCOL
    ).strip()
    if protocol != SUPPORTED_PROTOCOL:
        return TraceExport(
            False, f"OTLP protocol {protocol!r} is not supported (use {SUPPORTED_PROTOCOL})"
        )
    return TraceExport(True, f"exporting traces over OTLP ({protocol}) to {url}", url)
