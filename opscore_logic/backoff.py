"""Retry timing: exponential backoff with a cap (no jitter: decisions must be reproducible)."""

from __future__ import annotations

from opscore_logic.workflow_model import RetryPolicy


def retry_delay(policy: RetryPolicy, retry_number: int) -> float:
    """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
    raw = policy.backoff_seconds * policy.factor ** max(0, retry_number - 1)
    return float(min(policy.max_backoff_seconds, raw))
