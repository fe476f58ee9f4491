"""Serving an ASGI app inside the running event loop on a socket we bound ourselves, for
the simulator and for tests that need a real HTTP server in-process (real sockets, real
keep-alive, real connection drops: what `httpx.ASGITransport` cannot show)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

__all__ = ["bind_socket", "serve_app"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket; port 0 picks a free port (read it back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto
    # says TCP, and without it every keep-alive response stalls ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server minus its signal capture: whoever owns the process decides on signals.

    (uvicorn would replace the handlers of the whole process, tests included, and re-raise the
    signal after shutting down.)
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_app(
    app: Any, sock: socket.socket, *, access_log: bool = False
) -> AsyncIterator[asyncio.Task[None]]:
    """Serve an ASGI app with uvicorn on `sock` inside the running loop until the block exits.

    Yields once the server accepts connections; the yielded task ends when the server stops.
    Raises RuntimeError if the server cannot start within 10 s.
    """
    config = uvicorn.Config(app, log_config=None, access_log=access_log, lifespan="on")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10.0
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.005)
    try:
        yield task
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
