"""The in-memory Kubernetes API of `sidecar_fakes` behaves as the sidecar relies on."""

from __future__ import annotations

import pytest
from sidecar_fakes import NAMESPACE, FakeKube, merge_patch

from opscore_kube import AGENTS, Conflict, NotFound, Unavailable


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def test_merge_patch_removes_nulls_and_merges_objects() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": 5}}) == {
        "b": {"c": 5, "d": 3}
    }


def test_merge_patch_replaces_lists() -> None:
    assert merge_patch({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}


async def test_fake_create_ignores_status(kube: FakeKube) -> None:
    await kube.create(AGENTS, NAMESPACE, {"metadata": {"name": "a"}, "status": {"x": 1}})
    assert "status" not in kube.agent("a")


async def test_fake_create_conflicts_on_existing_name(kube: FakeKube) -> None:
    await kube.create(AGENTS, NAMESPACE, {"metadata": {"name": "a"}})
    with pytest.raises(Conflict):
        await kube.create(AGENTS, NAMESPACE, {"metadata": {"name": "a"}})


async def test_fake_status_patch_touches_only_status(kube: FakeKube) -> None:
    kube.put({"metadata": {"name": "a"}, "spec": {"agentId": "x"}})
    await kube.patch(
        AGENTS, NAMESPACE, "a", {"spec": {"agentId": "y"}, "status": {"s": 1}}, status=True
    )
    assert kube.agent("a")["spec"] == {"agentId": "x"}
    assert kube.agent("a")["status"] == {"s": 1}


async def test_fake_plain_patch_ignores_status(kube: FakeKube) -> None:
    kube.put({"metadata": {"name": "a"}, "spec": {}})
    await kube.patch(AGENTS, NAMESPACE, "a", {"spec": {"v": 1}, "status": {"s": 1}})
    assert kube.agent("a") == {**kube.agent("a"), "spec": {"v": 1}}
    assert "status" not in kube.agent("a")


async def test_fake_get_missing_is_not_found(kube: FakeKube) -> None:
    with pytest.raises(NotFound):
        await kube.get(AGENTS, NAMESPACE, "missing")


async def test_fake_list_filters_by_label(kube: FakeKube) -> None:
    kube.put({"metadata": {"name": "a", "labels": {"k": "1"}}})
    kube.put({"metadata": {"name": "b", "labels": {"k": "2"}}})
    listed = await kube.list(AGENTS, NAMESPACE, label_selector="k=2")
    assert [o["metadata"]["name"] for o in listed["items"]] == ["b"]


async def test_fake_down_raises_unavailable(kube: FakeKube) -> None:
    kube.down = True
    with pytest.raises(Unavailable):
        await kube.get(AGENTS, NAMESPACE, "a")
