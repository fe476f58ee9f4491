"""The test bed's API write faults: a write that takes effect and then times out, one that
fails before it is sent, reads never touched, and nothing at all when unset."""

from __future__ import annotations

import random

import httpx
import pytest

from opscore_kube import faults


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.method)
        return httpx.Response(200, json={})


def faulty(*, after: float, before: float) -> tuple[httpx.AsyncClient, Recorder]:
    inner = Recorder()
    transport = faults.FaultyWrites(inner, after=after, before=before, rng=random.Random(1))
    return httpx.AsyncClient(transport=transport, base_url="http://api"), inner


async def test_a_write_chosen_after_is_sent_then_times_out() -> None:
    client, inner = faulty(after=1.0, before=0.0)
    with pytest.raises(httpx.ReadTimeout, match="injected timeout after PATCH"):
        await client.patch("/apis/x", json={})
    assert inner.sent == ["PATCH"]  # it took effect


async def test_a_write_chosen_before_is_never_sent() -> None:
    client, inner = faulty(after=0.0, before=1.0)
    with pytest.raises(httpx.ConnectError, match="injected fault before POST"):
        await client.post("/apis/x", json={})
    assert inner.sent == []


async def test_reads_are_never_faulted() -> None:
    client, inner = faulty(after=0.5, before=0.5)
    for _ in range(20):
        assert (await client.get("/apis/x")).status_code == 200
    assert inner.sent == ["GET"] * 20


def test_unset_the_transport_is_returned_as_it_is() -> None:
    inner = Recorder()
    assert faults.wrap(inner) is inner


@pytest.mark.parametrize("text", ["after=2", "sideways=0.1", "after=x", "after=0.6,before=0.6"])
def test_a_malformed_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=faults.ENV):
        faults.parse(text)


def test_shares_are_parsed() -> None:
    assert faults.parse("after=0.01,before=0.02") == (0.01, 0.02)
