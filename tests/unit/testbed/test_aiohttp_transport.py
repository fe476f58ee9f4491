"""The httpx-over-aiohttp transport of the AgentKit simulator: same httpx API, same
httpx errors, connections reused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from local_http import serving

from opscore_testbed.aiohttp_transport import AiohttpTransport
from opscore_testbed.processes import free_port


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[tuple[str, str, bytes, str | None]]]]:
    """A local HTTP server echoing what it got; yields its URL and the requests seen
    (method, path with query, body, the peer's port)."""
    seen: list[tuple[str, str, bytes, str | None]] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append((request.method, request.path_qs, body, str(peer[1]) if peer else None))
        return web.json_response(
            {"content_type": request.headers.get("Content-Type"), "length": len(body)},
            status=201 if request.method == "POST" else 200,
            headers={"X-Echo": request.headers.get("X-Test", "")},
        )

    async with serving(echo) as url:
        yield url, seen


async def test_requests_and_responses_keep_the_httpx_api(
    server: tuple[str, list[tuple[str, str, bytes, str | None]]],
) -> None:
    url, seen = server
    async with httpx.AsyncClient(
        base_url=url, transport=AiohttpTransport(max_connections=4)
    ) as client:
        resp = await client.patch(
            "/apis/x/status",
            params={"a": "b c"},
            content=b'{"status": {}}',
            headers={"Content-Type": "application/merge-patch+json", "X-Test": "yes"},
        )
        assert resp.status_code == 200
        assert resp.headers["X-Echo"] == "yes"
        assert resp.json() == {"content_type": "application/merge-patch+json", "length": 14}
        created = await client.post("/objects", json={"k": 1})
        assert created.status_code == 201
    assert [(m, p, b) for m, p, b, _ in seen] == [
        ("PATCH", "/apis/x/status?a=b+c", b'{"status": {}}'),
        ("POST", "/objects", json.dumps({"k": 1}, separators=(",", ":")).encode()),
    ]


async def test_sequential_requests_reuse_one_connection(
    server: tuple[str, list[tuple[str, str, bytes, str | None]]],
) -> None:
    url, seen = server
    async with httpx.AsyncClient(
        base_url=url, transport=AiohttpTransport(max_connections=4)
    ) as client:
        for _ in range(5):
            (await client.get("/ping")).raise_for_status()
    assert len({peer for *_, peer in seen}) == 1  # no new connection (or TLS handshake) each


async def test_unreachable_server_is_an_httpx_transport_error() -> None:
    port = free_port()  # nothing listens there
    async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=1)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_slow_answer_is_an_httpx_read_timeout() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    async with serving(slow) as url:
        try:
            async with httpx.AsyncClient(
                transport=AiohttpTransport(max_connections=1), timeout=httpx.Timeout(0.2)
            ) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await client.get(f"{url}/")
        finally:
            release.set()  # before the server stops: it waits for its handlers


async def test_a_connection_closed_after_the_request_is_a_maybe_delivered_error() -> None:
    """The server read the whole request, then hung up without answering: the error must
    be one the AgentKit client counts as maybe delivered (not ConnectError or a bare
    NetworkError, which would let it dispatch the task again as never sent)."""
    got = asyncio.Event()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        got.set()
        writer.close()

    port = free_port()
    listener = await asyncio.start_server(hang_up, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=1)) as client:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await client.post(f"http://127.0.0.1:{port}/run", json={"task": 1})
        assert got.is_set()
    finally:
        listener.close()
        await listener.wait_closed()
