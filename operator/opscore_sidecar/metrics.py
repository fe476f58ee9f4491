"""Prometheus metrics of the sidecar (served on /metrics next to the Kubernetes client's).

Label values are bounded: `state` is the normalised state (Idle, Active, ..., Unknown),
never the raw string an agent sent, so a misbehaving agent cannot explode the series count.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REPORTS = Counter(
    "opscore_sidecar_reports_total",
    "State reports with a valid body from an admitted caller, by normalised state and "
    "result (stored, duplicate, invalid, unavailable, error). Requests refused before "
    "the body is read are counted by opscore_sidecar_http_responses_total.",
    ["state", "result"],
)
RATE_LIMITED = Counter(
    "opscore_sidecar_rate_limited_total",
    "Agent API requests answered 429, by the limit that was exhausted (key, agent).",
    ["limit"],
)
REPORT_WRITE_SECONDS = Histogram(
    "opscore_sidecar_report_write_seconds",
    "Time from accepting a report to its being stored in the Agent's status.reports "
    "(includes waiting for the write in flight for the same agent, and a heartbeat's "
    "linger; reports whose write failed are not observed).",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REPORT_BATCH_SIZE = Histogram(
    "opscore_sidecar_report_batch_size",
    "Reports stored by one status write (reports arriving during a write share the next).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
WEBHOOKS = Counter(
    "opscore_sidecar_webhooks_total",
    "AgentKit registration webhooks, by result "
    "(registered, unauthorized, invalid, disabled, unavailable, error).",
    ["result"],
)

REPORT_WRITE_RACES = Counter(
    "opscore_sidecar_report_write_races_total",
    "Report writes retried because another writer (a sidecar replica, or the operator's "
    "duplicate merge) had changed the Agent's reports since they were read.",
)
