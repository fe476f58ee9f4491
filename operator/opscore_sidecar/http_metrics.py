"""Every HTTP answer counted by route and status code, so refusals (401, 403, 413, 422,
429) and failures (5xx) are visible from outside, not only in the logs.

Plain ASGI like the other middleware (no extra task on the heartbeat path). The route label
is the route's path template (`/v1/opscore/agent/{agentId}/state`), never the raw path, and
odd methods are `other`, so clients cannot grow the series count. A request that reached no
route (an unknown path, or a body refused for its declared size before routing) is
`unrouted`.
"""

from __future__ import annotations

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_RESPONSES = Counter(
    "opscore_sidecar_http_responses_total",
    "HTTP responses of the sidecar, by method, route template and status code.",
    ["method", "route", "code"],
)
UNROUTED = "unrouted"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ResponseMetricsMiddleware:
    """Counts each response once, when its status line is sent (500 if the app raised
    before sending one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code: int | None = None

        async def counting_send(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_RESPONSES.labels(method, _route(scope), str(code or 500)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNROUTED
