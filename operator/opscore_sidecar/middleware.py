"""ASGI middleware: request ids for logs, and a request body limit enforced while reading.

Both are plain ASGI (not Starlette's BaseHTTPMiddleware) so they add no task or copy to
the heartbeat path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opscore_sidecar.logs import request_id_var

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: After a 413, how much more of the refused body is read and thrown away, and for how
#: long, before the connection closes (see `BodyLimitMiddleware._reject`).
DRAIN_MAX_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 5.0


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the streamed body passes the limit.

    An HTTPException, so FastAPI's body reading re-raises it as is (it would turn any other
    exception into a 400) and its handler answers 413 with `{"detail": ...}`.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"Request body exceeds {limit} bytes",
        )


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes`: from Content-Length before reading anything, else
    as soon as the streamed (chunked) body passes the limit, never after buffering it all."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(receive, send)

    async def _reject(self, receive: Receive, send: Send) -> None:
        """Answer 413, then read and discard what the client still sends, then close.

        Closing a socket with unread data in its receive buffer makes the kernel send a
        reset instead of a clean close, and a client still sending (most send the whole
        body before reading) may lose the 413 to that reset and see a network error (1 in
        500 concurrent 1 MB posts did, on loopback). So the answer goes out complete (its
        Content-Length lets the client read it at once) but the response is held open
        while the rest of the body is drained, up to `DRAIN_MAX_BYTES` or
        `DRAIN_SECONDS`, whichever comes first, or until the client hangs up; only then
        does the final empty chunk let uvicorn close. A client sending more than that gets
        the answer and, possibly, the reset (what nginx's lingering close also settles for).
        """
        body = json.dumps({"detail": f"Request body exceeds {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await _drain(receive)
        await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive) -> None:
    """Read and drop request body chunks until the body ends, the client disconnects, or
    the bounds are reached."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained <= DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return  # http.disconnect: the client is gone
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestIdMiddleware:
    """Takes `X-Request-ID` (or makes one), puts it in every log line of the request and
    echoes it in the response, so an agent's report can be followed through the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", encoded)]
                message = {**message, "headers": headers}
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.fullmatch(candidate) else None
    return None
