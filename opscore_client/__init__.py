"""A tiny client for agents that report their state to Ops-Core with exact correlation.

The AgentKit SDK's `report_state_to_opscore` sends `{agentId, timestamp, state, details}`
and nothing ties a report to the task it is about, so Ops-Core has to infer that a task
ended from an `idle` after the dispatch. An agent using this client names the task: it
passes the `opscore_task_id` it received in AgentKit's message, and (on success) a small
output that later steps can read as `{{ steps.STEP.output.KEY }}`:

    client = OpsCoreClient(os.environ["OPSCORE_API_URL"], os.environ["OPSCORE_API_KEY"])
    task_id = task_id_of(message)            # the AgentKit message the agent received
    client.report(agent_id, "active", task_id=task_id)
    ...
    client.report(agent_id, "idle", task_id=task_id, output={"summary": text})
    # or, on failure:
    client.report(agent_id, "error", task_id=task_id, error="search backend timed out")

The payload is exactly the SDK's (same keys, same timestamp format, same absolute path
joined onto `OPSCORE_API_URL`, so any path prefix there is dropped as the SDK drops it);
the correlation rides in `details` (`opscore_task_id`, `output`, and for errors
`error_code`/`message`), which the SDK's payload already carries. So it works against
the earlier Ops-Core too, which ignored those keys.

Unlike the SDK it retries: a 503 (the sidecar could not store the report; it sends
`Retry-After`) and connection errors are tried again a few times. That is safe because a
report sent twice is stored once (the sidecar drops exact duplicates: same state,
timestamp and details). `AsyncOpsCoreClient` is the same for asyncio agents.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote, urljoin

import httpx

__all__ = [
    "TASK_ID_KEY",
    "AsyncOpsCoreClient",
    "OpsCoreClient",
    "OpsCoreError",
    "report_payload",
    "state_url",
    "task_id_of",
]

TASK_ID_KEY = "opscore_task_id"
DEFAULT_ERROR_CODE = "AGENT_ERROR"
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_RETRY_AFTER = 5.0


class OpsCoreError(Exception):
    """Ops-Core did not accept the report; `status` is the HTTP status (0: unreachable)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Ops-Core answered {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


def task_id_of(message: Mapping[str, Any]) -> str | None:
    """The `opscore_task_id` of a message AgentKit forwarded to the agent (AgentKit keeps
    it as a top-level key), or None when the message did not come from Ops-Core."""
    value = message.get(TASK_ID_KEY)
    return value if isinstance(value, str) and value else None


def state_url(api_url: str, agent_id: str) -> str:
    """The agent's state endpoint: an absolute path joined onto `api_url`, like the SDK."""
    return urljoin(api_url, f"/v1/opscore/agent/{quote(agent_id, safe='')}/state")


def report_payload(
    agent_id: str,
    state: str,
    *,
    task_id: str | None = None,
    output: Mapping[str, Any] | None = None,
    error: str | Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The SDK-compatible report body.

    `error`: a message (sent as `{error_code: AGENT_ERROR, message}`) or a mapping with
    `error_code`/`message` of your own. `details`: any further keys, merged first (the
    named arguments win). `timestamp`: now (UTC, microseconds) unless given.
    """
    body_details: dict[str, Any] = dict(details or {})
    if task_id is not None:
        body_details[TASK_ID_KEY] = task_id
    if output is not None:
        body_details["output"] = dict(output)
    if error is not None:
        if isinstance(error, str):
            body_details.update({"error_code": DEFAULT_ERROR_CODE, "message": error})
        else:
            body_details.update(dict(error))
    moment = (timestamp or datetime.now(UTC)).astimezone(UTC)
    return {
        "agentId": agent_id,
        "timestamp": moment.isoformat(timespec="microseconds"),
        "state": state,
        "details": body_details,
    }


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}


def _retry_delay(response: httpx.Response | None, attempt: int, backoff: float) -> float:
    if response is not None:
        try:
            return min(_MAX_RETRY_AFTER, float(response.headers.get("Retry-After", "")))
        except ValueError:
            pass
    return float(backoff * 2 ** (attempt - 1))


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:300]
    return str(body)[:300]


class OpsCoreClient:
    """Synchronous client (httpx). Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url
        self._retries = retries
        self._backoff = backoff
        self._http = httpx.Client(timeout=timeout, headers=_headers(api_key), transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def report(
        self,
        agent_id: str,
        state: str,
        *,
        task_id: str | None = None,
        output: Mapping[str, Any] | None = None,
        error: str | Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Send one state report; raises `OpsCoreError` unless Ops-Core stored it."""
        payload = report_payload(
            agent_id, state, task_id=task_id, output=output, error=error, details=details
        )
        url = state_url(self.api_url, agent_id)
        for attempt in range(1, self._retries + 2):
            response: httpx.Response | None = None
            try:
                response = self._http.post(url, json=payload)
            except httpx.HTTPError as exc:
                failure = OpsCoreError(0, f"Ops-Core unreachable: {type(exc).__name__}: {exc}")
            else:
                if response.is_success:
                    return
                failure = OpsCoreError(response.status_code, _detail(response))
                if response.status_code not in _RETRYABLE:
                    raise failure
            if attempt > self._retries:
                raise failure
            time.sleep(_retry_delay(response, attempt, self._backoff))


class AsyncOpsCoreClient:
    """The asyncio twin of `OpsCoreClient` (use `async with`, or `await aclose()`)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url
        self._retries = retries
        self._backoff = backoff
        self._http = httpx.AsyncClient(
            timeout=timeout, headers=_headers(api_key), transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def report(
        self,
        agent_id: str,
        state: str,
        *,
        task_id: str | None = None,
        output: Mapping[str, Any] | None = None,
        error: str | Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Send one state report; raises `OpsCoreError` unless Ops-Core stored it."""
        payload = report_payload(
            agent_id, state, task_id=task_id, output=output, error=error, details=details
        )
        url = state_url(self.api_url, agent_id)
        for attempt in range(1, self._retries + 2):
            response: httpx.Response | None = None
            try:
                response = await self._http.post(url, json=payload)
            except httpx.HTTPError as exc:
                failure = OpsCoreError(0, f"Ops-Core unreachable: {type(exc).__name__}: {exc}")
            else:
                if response.is_success:
                    return
                failure = OpsCoreError(response.status_code, _detail(response))
                if response.status_code not in _RETRYABLE:
                    raise failure
            if attempt > self._retries:
                raise failure
            await asyncio.sleep(_retry_delay(response, attempt, self._backoff))
