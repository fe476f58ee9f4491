"""The operator's own cache sync: which namespaces it lists, and how an object deleted
before kopf's listing is forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from opscore_kube import AGENTS, NotFound
from opscore_kube.resources import Resource
from opscore_operator.initial_sync import InitialSync, watched_namespaces


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--namespace", "team-a"], ["team-a"]),
        (["--namespace=team-a", "-n", "team-b", "-nteam-c"], ["team-a", "team-b", "team-c"]),
        (["--standalone", "-n", "team-a", "-n", "team-a"], ["team-a"]),
        (["-A"], [None]),
        (["--all-namespaces"], [None]),
        (["-n", "team-*", "-n", "plain"], ["plain"]),  # kopf serves no patterns unscanned
    ],
)
def test_the_namespaces_kopf_serves_come_from_its_command_line(
    argv: list[str], expected: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOPF_RUN_NAMESPACE", raising=False)
    assert watched_namespaces(argv) == expected


def _agent(name: str, version: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(version)}}


class FakeKube:
    """Lists two pages; knows only the objects in `alive`."""

    def __init__(self, pages: list[list[dict[str, Any]]], alive: set[str]) -> None:
        self.pages = pages
        self.alive = alive
        self.gets: list[str] = []

    async def list_pages(
        self, resource: Resource, namespace: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        for page in self.pages:
            yield page

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        self.gets.append(name)
        if name not in self.alive:
            raise NotFound(404, "NotFound", name)
        return _agent(name, 9)


async def test_listed_objects_kopf_never_confirms_are_fetched_and_forgotten_if_gone() -> None:
    kube = FakeKube([[_agent("a", 1), _agent("b", 2)], [_agent("c", 3)]], alive={"a", "b"})
    sync = InitialSync(kube)  # type: ignore[arg-type]
    delivered: list[tuple[str | None, str]] = []

    def deliver(kind: str | None, body: dict[str, Any]) -> None:
        delivered.append((kind, body["metadata"]["name"]))

    assert await sync.list_all([(AGENTS, deliver)], ["ns"]) == 3
    assert delivered == [(None, "a"), (None, "b"), (None, "c")]
    sync.confirm("agents", ("ns", "a"))  # kopf's listing has "a"; "c" was deleted meanwhile
    await asyncio.wait_for(sync.sweep(quiet=0.01), timeout=5)
    assert sync.pending() == 0
    assert sorted(kube.gets) == ["b", "c"]
    assert ("DELETED", "c") in delivered
    assert (None, "b") in delivered[3:]


async def test_nothing_is_fetched_when_kopf_confirms_everything() -> None:
    kube = FakeKube([[_agent("a", 1)]], alive={"a"})
    sync = InitialSync(kube)  # type: ignore[arg-type]
    await sync.list_all([(AGENTS, lambda kind, body: None)], ["ns"])
    sync.confirm("agents", ("ns", "a"))
    await asyncio.wait_for(sync.sweep(quiet=0.01), timeout=5)
    assert kube.gets == []
