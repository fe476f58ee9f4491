"""The test bed's API write faults: a write that takes effect and then times out, one that
fails before it is sent, reads never touched, and nothing at all when unset."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from opscore_kube import faults
from opscore_kube.exchange import Answer, Lost, NotSent


class Recorder:
    """An exchange that answers 200 to everything and records the methods it was sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        read_timeout: float | None = None,
    ) -> Answer:
        self.sent.append(method)
        return Answer(200, "OK", {}, b"{}")

    async def aclose(self) -> None:
        pass


def faulty(*, after: float, before: float) -> tuple[faults.FaultyWrites, Recorder]:
    inner = Recorder()
    return faults.FaultyWrites(inner, after=after, before=before, rng=random.Random(1)), inner


async def test_a_write_chosen_after_is_sent_then_its_answer_is_lost() -> None:
    exchange, inner = faulty(after=1.0, before=0.0)
    with pytest.raises(Lost, match="injected timeout after PATCH /apis/x"):
        await exchange.send("PATCH", "/apis/x", body=b"{}")
    assert inner.sent == ["PATCH"]  # it took effect


async def test_a_write_chosen_before_is_never_sent() -> None:
    exchange, inner = faulty(after=0.0, before=1.0)
    with pytest.raises(NotSent, match="injected fault before POST /apis/x"):
        await exchange.send("POST", "/apis/x", body=b"{}")
    assert inner.sent == []


async def test_reads_are_never_faulted() -> None:
    exchange, inner = faulty(after=0.5, before=0.5)
    for _ in range(20):
        assert (await exchange.send("GET", "/apis/x")).status == 200
    assert inner.sent == ["GET"] * 20


def test_unset_the_exchange_is_returned_as_it_is() -> None:
    inner = Recorder()
    assert faults.wrap(inner) is inner


@pytest.mark.parametrize("text", ["after=2", "sideways=0.1", "after=x", "after=0.6,before=0.6"])
def test_a_malformed_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=faults.ENV):
        faults.parse(text)


def test_shares_are_parsed() -> None:
    assert faults.parse("after=0.01,before=0.02") == (0.01, 0.02)
