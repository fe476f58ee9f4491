"""The operator's object cache: an older body never replaces a newer one, listeners hear
every change, and stored bodies share their strings."""

from __future__ import annotations

import json
from typing import Any

from opscore_operator.store import TOMBSTONE_SECONDS, Key, ObjectCache


def body(name: str, version: int, **status: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(  # a fresh decode, as each watch event is
        json.dumps(
            {
                "metadata": {
                    "namespace": "ns",
                    "name": name,
                    "resourceVersion": str(version),
                    "managedFields": [{"manager": "kubectl"}],
                },
                "status": {"phase": "Running", **status},
            }
        )
    )
    return decoded


def test_only_a_newer_body_is_stored_and_listeners_hear_each_change() -> None:
    cache = ObjectCache()
    heard: list[Key] = []
    cache.listeners.append(heard.append)
    assert cache.upsert(body("a", 5))
    assert cache.upsert(body("a", 5))  # the same version again (an echo): handled again
    assert not cache.upsert(body("a", 4))
    assert cache.upsert(body("a", 6, message="newer"))
    stored = cache.get(("ns", "a"))
    assert stored is not None
    assert stored["status"]["message"] == "newer"
    assert "managedFields" not in stored["metadata"]
    cache.delete(body("a", 7))
    assert cache.get(("ns", "a")) is None
    assert not cache.upsert(body("a", 7))  # older than the deletion
    assert heard == [("ns", "a")] * 4


def test_stored_bodies_equal_what_was_given_and_share_their_strings() -> None:
    cache = ObjectCache()
    message = "waiting for a free agent with capabilities [scale] (10000 busy or not ready)"
    given = [body(name, 1, message=message) for name in ("a", "b")]
    expected = json.loads(json.dumps(given))
    for item in given:
        del item["metadata"]["managedFields"]
        cache.upsert(json.loads(json.dumps(item)))
    a, b = cache.get(("ns", "a")), cache.get(("ns", "b"))
    assert a is not None
    assert b is not None
    for item, stored in zip(expected, (a, b), strict=True):
        del item["metadata"]["managedFields"]
        assert stored == item
    assert a["status"]["message"] is b["status"]["message"]
    assert next(iter(a["status"])) is next(iter(b["status"]))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_deleted_object_is_remembered_only_until_its_marker_expires() -> None:
    clock = FakeClock()
    cache = ObjectCache(clock=clock)
    cache.delete(body("a", 7))
    clock.now += TOMBSTONE_SECONDS - 1
    cache.delete(body("b", 8))

    assert not cache.upsert(body("a", 6))  # a stale event, still refused
    clock.now += 2
    cache.delete(body("c", 9))  # any deletion prunes what expired

    assert cache.tombstones() == 2  # b and c; a's marker is gone
    assert cache.upsert(body("a", 6))


def test_markers_stay_bounded_however_many_objects_are_deleted() -> None:
    clock = FakeClock()
    cache = ObjectCache(clock=clock)
    for index in range(10_000):
        cache.upsert(body(f"w{index}", index))
        cache.delete(body(f"w{index}", index))
        clock.now += 1.0

    assert cache.tombstones() == int(TOMBSTONE_SECONDS)
