"""Every oversized body gets its 413, every time, under load: on a real uvicorn socket,
not through an in-process transport, because the failure was at the TCP level (the server
answered and closed while the client was still sending, and the client saw a reset
instead of the answer)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from opscore_sidecar.middleware import BodyLimitMiddleware
from opscore_testbed.asgi_serving import bind_socket
from opscore_testbed.chaos.rawhttp import declared_post

pytestmark = pytest.mark.timeout(120)

LIMIT = 64 * 1024
ONE_MB = b"x" * (1024 * 1024)
CONCURRENT = 50
#: 2,000 prefix posts: before the fix, about 3 in 1,000 were reset. (Clients that send the
#: whole megabyte are slower; 250 of each kind.)
ROUNDS = 40
FULL_BODY_ROUNDS = 5


def limited_app() -> BodyLimitMiddleware:
    app = FastAPI()

    @app.post("/v1/opscore/agent/{agent_id}/state", status_code=202)
    async def state(agent_id: str, request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return BodyLimitMiddleware(app, max_bytes=LIMIT)


@pytest.fixture
def url() -> Iterator[str]:
    """The app on a real uvicorn, in its own thread and event loop (as the sidecar runs:
    served apart from its clients, so a close can race the client's sending)."""
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(limited_app(), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1/opscore/agent/a1/state"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def answers(url: str, body: bytes | None, *, streamed: bool = False) -> list[str]:
    """What CONCURRENT clients get, ROUNDS times over: a status code or the error."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(ONE_MB), 64 * 1024):
            yield ONE_MB[start : start + 64 * 1024]

    async def one(client: httpx.AsyncClient) -> str:
        try:
            content = chunks() if streamed else body
            response = await client.post(url, content=content)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return str(response.status_code)

    seen: list[str] = []
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        for _ in range(FULL_BODY_ROUNDS):
            seen += await asyncio.gather(*(one(client) for _ in range(CONCURRENT)))
    return seen


async def test_a_declared_1mb_body_gets_413_every_time_under_load(url: str) -> None:
    seen = await answers(url, ONE_MB)
    assert [s for s in seen if s != "413"] == []


async def test_a_streamed_1mb_body_gets_413_every_time_under_load(url: str) -> None:
    seen = await answers(url, None, streamed=True)
    assert [s for s in seen if s != "413"] == []


async def test_a_client_that_waits_for_the_answer_after_a_prefix_gets_413_every_time(
    url: str,
) -> None:
    """Declares 1 MB, sends 64 KiB, then reads (the fault suite's F7 client): the answer
    must come on the declared length, and must not be lost to a reset (it was, about 3
    times in 1,000, before the refused body was drained)."""
    base, _, path = url.partition("/v1/")

    async def one() -> str:
        try:
            status, _ = await declared_post(base, "/v1/" + path, {}, ONE_MB)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return str(status)

    seen: list[str] = []
    for _ in range(ROUNDS):
        seen += await asyncio.gather(*(one() for _ in range(CONCURRENT)))
    assert [s for s in seen if s != "413"] == []


async def test_a_body_within_the_limit_is_still_read(url: str) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        response = await client.post(url, content=b"y" * LIMIT)
    assert (response.status_code, response.json()) == (202, {"bytes": LIMIT})
