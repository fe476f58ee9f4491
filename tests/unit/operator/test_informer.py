"""The operator's informer: list, watch from the list's version, go on from the last
version seen (bookmarks included), list again on 410 and forget what is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pytest_mock import MockerFixture

from opscore_kube import AGENTS
from opscore_kube.errors import Gone
from opscore_kube.resources import Resource
from opscore_operator import informer as informer_module
from opscore_operator.informer import Informer

Body = dict[str, Any]
Script = list[tuple[str, Body] | BaseException]


def _obj(name: str, version: int, namespace: str = "ns") -> Body:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": str(version)}}


class FakeKube:
    """Pages for each LIST in turn; for each WATCH in turn, a script of events, an error
    raised where it stands; a watch past the scripts blocks (a quiet, open stream)."""

    def __init__(self, listings: list[list[list[Body]]], watches: list[Script]) -> None:
        self.listings = listings
        self.watches = watches
        self.watched_from: list[str] = []
        self.opened = asyncio.Event()
        self.listed = 0

    async def list_page(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        limit: int = 500,
        continue_token: str | None = None,
    ) -> Body:
        index = int(continue_token or 0)
        pages = self.listings[0]
        meta = {"resourceVersion": f"list-{self.listed}"}
        if index < len(pages) - 1:
            return {"metadata": {**meta, "continue": str(index + 1)}, "items": pages[index]}
        self.listings.pop(0)
        self.listed += 1
        return {"metadata": meta, "items": pages[index]}

    async def watch(
        self, resource: Resource, namespace: str | None, resource_version: str
    ) -> AsyncIterator[tuple[str, Body]]:
        self.watched_from.append(resource_version)
        self.opened.set()
        if not self.watches:
            await asyncio.Event().wait()
        for item in self.watches.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item


class Cache:
    def __init__(self) -> None:
        self.events: list[tuple[str | None, str]] = []
        self.keys: set[tuple[str, str]] = set()

    def deliver(self, kind: str | None, body: Body) -> None:
        meta = body["metadata"]
        self.events.append((kind, meta["name"]))
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self.keys.discard(key)
        else:
            self.keys.add(key)


def _informer(kube: FakeKube, cache: Cache, namespace: str | None = "ns") -> Informer:
    return Informer(kube, AGENTS, namespace, cache.deliver, lambda: set(cache.keys))  # type: ignore[arg-type]


async def _run_until(informer: Informer, kube: FakeKube, watches: int) -> None:
    """Run the informer until it has opened `watches` watches (5 s at most)."""
    task = asyncio.create_task(informer.run("4"))
    try:
        async with asyncio.timeout(5):
            while len(kube.watched_from) < watches:
                await kube.opened.wait()
                kube.opened.clear()
    finally:
        task.cancel()


async def test_the_listing_is_delivered_page_by_page_and_gives_the_version_to_watch_from() -> None:
    kube = FakeKube([[[_obj("a", 1)], [_obj("b", 2)]]], [])
    cache = Cache()
    version = await _informer(kube, cache).list()
    assert cache.events == [(None, "a"), (None, "b")]
    assert version == "list-0"


async def test_the_watch_goes_on_from_the_last_version_seen_bookmarks_included(
    mocker: MockerFixture,
) -> None:
    backoff = mocker.spy(informer_module, "_backoff")
    kube = FakeKube(
        [],
        [
            [("ADDED", _obj("a", 5)), ("MODIFIED", _obj("a", 6))],  # the server's timeout
            [("BOOKMARK", {"metadata": {"resourceVersion": "9"}})],
            [("DELETED", _obj("a", 10))],
        ],
    )
    cache = Cache()
    await _run_until(_informer(kube, cache), kube, 4)
    assert kube.watched_from == ["4", "6", "9", "10"]
    assert cache.events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert backoff.call_count == 0


async def test_gone_lists_again_and_forgets_what_the_new_listing_no_longer_holds() -> None:
    kube = FakeKube(
        [[[_obj("b", 20), _obj("c", 21)]]],
        [[("ADDED", _obj("a", 5)), Gone(410, "Expired", "too old")]],
    )
    cache = Cache()
    cache.keys.add(("other-ns", "x"))  # another namespace's informer holds this one
    informer = _informer(kube, cache)
    await _run_until(informer, kube, 2)
    assert cache.events == [("ADDED", "a"), (None, "b"), (None, "c"), ("DELETED", "a")]
    assert cache.keys == {("ns", "b"), ("ns", "c"), ("other-ns", "x")}
    assert kube.watched_from == ["4", "list-0"]
    assert informer.relists == 1


@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("reset"), TimeoutError(), ValueError("bad json")],
    ids=["connection", "timeout", "garbage"],
)
async def test_a_broken_watch_is_opened_again_from_its_version_after_a_backoff(
    error: BaseException, mocker: MockerFixture
) -> None:
    mocker.patch.object(informer_module, "FIRST_BACKOFF_SECONDS", 0.01)
    backoff = mocker.spy(informer_module, "_backoff")
    kube = FakeKube([], [[("ADDED", _obj("a", 5)), error], [("MODIFIED", _obj("a", 7))]])
    cache = Cache()
    await _run_until(_informer(kube, cache), kube, 3)
    assert kube.watched_from == ["4", "5", "7"]
    assert cache.events == [("ADDED", "a"), ("MODIFIED", "a")]
    assert backoff.call_count == 1


async def test_a_watch_that_ends_at_once_with_nothing_backs_off_instead_of_spinning(
    mocker: MockerFixture,
) -> None:
    mocker.patch.object(informer_module, "FIRST_BACKOFF_SECONDS", 0.01)
    backoff = mocker.spy(informer_module, "_backoff")
    kube = FakeKube([], [[], [], []])
    await _run_until(_informer(kube, Cache()), kube, 4)
    assert [c.args[0] for c in backoff.call_args_list] == [1, 2, 3], "growing"
