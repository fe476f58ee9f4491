"""KubeClient on its aiohttp exchange, against a local HTTP server playing the API server:
what goes on the wire, which answers are retried, and which error each answer becomes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from local_http import serving

from opscore_kube import AGENTS, Connection, Invalid, KubeApiError, KubeClient, NotFound
from opscore_kube.errors import Conflict, Unavailable
from opscore_kube.exchange import AiohttpExchange, Lost, NotSent
from opscore_testbed.processes import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request as the server got it."""

    method: str
    path_qs: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeApiServer:
    """Answers each request with the next of `answers` (the last one repeats)."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    answers: list[Handler] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return await answer(request)


def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        text = body if isinstance(body, str) else json.dumps(body if body is not None else {})
        return web.Response(status=status, text=text, headers=headers)

    return answer


def status_reply(code: int, reason: str, message: str) -> Handler:
    return reply(code, {"kind": "Status", "code": code, "reason": reason, "message": message})


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer("", answers=[reply(200, {"kind": "Agent"})])
    async with serving(server.handle) as server.url:
        yield server


def client_for(url: str, **kwargs: float) -> KubeClient:
    connection = Connection(server=url, ssl_context=False, static_token="Bearer t0k3n")
    return KubeClient(connection, user_agent="opscore-test", **kwargs)  # type: ignore[arg-type]


async def test_a_get_sends_credentials_and_asks_for_json(api: FakeApiServer) -> None:
    async with client_for(api.url) as kube:
        assert await kube.get(AGENTS, "ns", "a1") == {"kind": "Agent"}
    (seen,) = api.seen
    assert (seen.method, seen.path_qs) == (
        "GET",
        "/apis/opscore.opspawn.io/v1alpha1/namespaces/ns/agents/a1",
    )
    assert seen.headers["Authorization"] == "Bearer t0k3n"
    assert seen.headers["User-Agent"] == "opscore-test"
    assert seen.headers["Accept"] == "application/json"
    assert "Accept-Encoding" not in seen.headers  # loopback answers are not compressed


async def test_list_parameters_survive_the_trip_encoded(api: FakeApiServer) -> None:
    api.answers = [reply(200, {"kind": "AgentList", "metadata": {}, "items": [{"a": 1}]})]
    token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTAsInN0YXJ0IjoiYS8ifQ=="
    async with client_for(api.url) as kube:
        await kube.list(AGENTS, "ns", label_selector="team in (a,b),!paused")
        page = await kube.list_page(AGENTS, "ns", limit=2, continue_token=token)
    assert api.seen[0].query == {"labelSelector": "team in (a,b),!paused"}
    assert api.seen[1].query == {"limit": "2", "continue": token}
    assert page["items"] == [{"a": 1, "apiVersion": "opscore.opspawn.io/v1alpha1", "kind": "Agent"}]


async def test_patches_and_creates_carry_their_content_types(api: FakeApiServer) -> None:
    async with client_for(api.url) as kube:
        await kube.patch(AGENTS, "ns", "a1", {"status": {"x": 1}}, status=True)
        await kube.json_patch(AGENTS, "ns", "a1", [{"op": "test", "path": "/a", "value": 1}])
        await kube.create(AGENTS, "ns", {"metadata": {"name": "a2"}})
        await kube.delete(AGENTS, "ns", "a2", preconditions={"uid": "u1"})
    types = [(s.method, s.headers.get("Content-Type"), json.loads(s.body)) for s in api.seen]
    assert types == [
        ("PATCH", "application/merge-patch+json", {"status": {"x": 1}}),
        ("PATCH", "application/json-patch+json", [{"op": "test", "path": "/a", "value": 1}]),
        ("POST", "application/json", {"metadata": {"name": "a2"}}),
        (
            "DELETE",
            "application/json",
            {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "u1"}},
        ),
    ]
    assert api.seen[0].path_qs.endswith("/agents/a1/status")


async def test_an_empty_success_is_an_empty_body(api: FakeApiServer) -> None:
    api.answers = [reply(200, "")]
    async with client_for(api.url) as kube:
        assert await kube.delete(AGENTS, "ns", "a1") == {}


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [(404, "NotFound", NotFound), (409, "Conflict", Conflict), (422, "Invalid", Invalid)],
)
async def test_an_error_answer_is_its_class_with_the_servers_words(
    api: FakeApiServer, code: int, reason: str, error: type[KubeApiError]
) -> None:
    api.answers = [status_reply(code, reason, f"the server says {code}")]
    async with client_for(api.url) as kube:
        with pytest.raises(error) as raised:
            await kube.get(AGENTS, "ns", "a1")
    assert (raised.value.status, raised.value.reason) == (code, reason)
    assert raised.value.message == f"the server says {code}"
    assert len(api.seen) == 1  # never retried


async def test_an_error_answer_that_is_not_json_keeps_its_text(api: FakeApiServer) -> None:
    api.answers = [reply(403, "forbidden by a proxy")]
    async with client_for(api.url) as kube:
        with pytest.raises(KubeApiError) as raised:
            await kube.get(AGENTS, "ns", "a1")
    assert (raised.value.status, raised.value.reason) == (403, "Forbidden")
    assert raised.value.message == "forbidden by a proxy"


async def test_a_busy_server_is_retried_after_the_time_it_asks_for(api: FakeApiServer) -> None:
    api.answers = [
        reply(429, {}, {"Retry-After": "0"}),
        reply(503, {}, {"Retry-After": "0"}),
        reply(200, {"kind": "Agent"}),
    ]
    async with client_for(api.url) as kube:
        assert await kube.get(AGENTS, "ns", "a1") == {"kind": "Agent"}
    assert len(api.seen) == 3


async def test_retries_are_bounded_then_the_caller_is_told(api: FakeApiServer) -> None:
    api.answers = [status_reply(503, "ServiceUnavailable", "etcd is down")]
    async with client_for(api.url, max_retries=2) as kube:
        with pytest.raises(Unavailable, match="etcd is down"):
            await kube.get(AGENTS, "ns", "a1")
    assert len(api.seen) == 3


async def test_an_unreachable_server_is_unavailable_after_the_retries() -> None:
    async with client_for(f"http://127.0.0.1:{free_port()}", max_retries=1) as kube:
        with pytest.raises(Unavailable, match="Unreachable"):
            await kube.get(AGENTS, "ns", "a1")
        assert await kube.readyz() is False


async def test_readyz_is_one_try_at_the_servers_health(api: FakeApiServer) -> None:
    api.answers = [reply(200, "ok")]
    async with client_for(api.url) as kube:
        assert await kube.readyz() is True
    api.answers = [reply(500, "etcd failed")]
    async with client_for(api.url) as kube:
        assert await kube.readyz() is False
    assert [s.path_qs for s in api.seen] == ["/readyz", "/readyz"]


async def test_a_write_whose_answer_was_lost_is_sent_again(api: FakeApiServer) -> None:
    """The first PATCH is read and then the connection drops: the client cannot know if
    it took effect, and retries (the API server's fences make that safe)."""

    async def hang_up(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    api.answers = [hang_up, reply(200, {"kind": "Agent"})]
    async with client_for(api.url) as kube:
        assert await kube.patch(AGENTS, "ns", "a1", {"spec": {}}) == {"kind": "Agent"}
    assert [s.method for s in api.seen] == ["PATCH", "PATCH"]


# -- the exchange alone: what each delivery failure is called ------------------------------


async def test_no_server_is_not_sent() -> None:
    exchange = AiohttpExchange(
        f"http://127.0.0.1:{free_port()}", max_connections=1, keepalive_timeout=1, timeout=1
    )
    try:
        with pytest.raises(NotSent):
            await exchange.send("POST", "/x", body=b"{}")
    finally:
        await exchange.aclose()


async def test_a_silent_server_is_a_lost_answer(api: FakeApiServer) -> None:
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    api.answers = [silent]
    exchange = AiohttpExchange(api.url, max_connections=1, keepalive_timeout=1, timeout=10)
    try:
        with pytest.raises(Lost, match="no answer in time"):
            await exchange.send("POST", "/x", body=b"{}", read_timeout=0.2)
    finally:
        release.set()
        await exchange.aclose()


async def test_sequential_requests_share_one_connection(api: FakeApiServer) -> None:
    peers: list[object] = []

    async def peer(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return web.Response(text="{}")

    api.answers = [peer]
    exchange = AiohttpExchange(api.url, max_connections=4, keepalive_timeout=5, timeout=5)
    try:
        for _ in range(5):
            assert (await exchange.send("GET", "/x")).status == 200
    finally:
        await exchange.aclose()
    assert len(set(map(str, peers))) == 1
