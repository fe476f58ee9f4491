"""In-memory copies of the objects the operator watches (an informer cache).

The operator updates it from watch events and from the answers to its own writes, so a
decision never starts from a status older than one it wrote itself (that is how steps
would get dispatched twice). Older resourceVersions never overwrite newer ones.

Why resourceVersions are compared as numbers, although the API conventions call them
opaque: the answer to our write and the watch event of an earlier write race, and either
may arrive first. Without an order, the late event would put back the status before our
write, and the next pass would dispatch the same step again. Alternatives the conventions
allow do not cover a relist: "wait for the echo of the version our write returned" hangs
when a relist skips that version, and "later on the watch is newer" is false for the
answer of a write, which travels outside the watch. In this deployment every
resourceVersion comes from one etcd (the API server's watch cache hands out etcd's
revision), and the revisions of one resource type only grow;
`tests/integration/test_resource_versions.py` checks exactly that against the real API
server, so a server that broke it (a sharded or non-etcd store) fails that test. A value
that is not an integer is never compared: such a body is always stored.

Deleted objects leave a marker (their last resourceVersion) so a watch event older than
the deletion does not bring them back; markers are dropped after `TOMBSTONE_SECONDS`,
long after any event in flight at the deletion has arrived.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

Key = tuple[str, str]  # (namespace, name)
Body = dict[str, Any]

# How long a deleted object's marker is kept: a watch event written before the deletion
# arrives within the watch's latency (well under a second; minutes when the API server
# restarts and the watch resumes), never after this.
TOMBSTONE_SECONDS = 600.0


def key_of(body: Body) -> Key:
    meta = body.get("metadata", {})
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


_HEAVY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _slim(body: Body) -> None:
    """Drop what no decision reads and that dominates memory at scale: managedFields
    (often larger than the object) and kubectl's copy of the last applied manifest."""
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        for name in _HEAVY_ANNOTATIONS:
            annotations.pop(name, None)


_INTERN_UP_TO = 200  # characters: names, phases, times, reasons, repeated messages


def _compact(value: Any) -> Any:
    """A copy sharing its strings: every key, and every value up to `_INTERN_UP_TO`
    characters, interned. Each body is decoded from its own JSON document, so without
    this 20,000 cached objects hold 20,000 copies of "metadata", "Queued", the same
    condition messages... (about a third of a body's memory)."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= _INTERN_UP_TO else value
    if isinstance(value, dict):
        return {(sys.intern(k) if isinstance(k, str) else k): _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _version(body: Body) -> int | None:
    """The resourceVersion as a number, to order bodies of one kind (safe here only: see
    the module docstring); None when it is not an integer, and then it is never compared."""
    value = body.get("metadata", {}).get("resourceVersion")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ObjectCache:
    """Latest known body per (namespace, name), plus a per-version memo of parsed forms.

    `listeners` are told the key of every body stored or deleted (an informer's event
    handlers), so what is derived from the bodies can be kept current incrementally."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._items: dict[Key, Body] = {}
        # key -> (version at deletion, when deleted); insertion order is deletion order.
        self._tombstones: dict[Key, tuple[int, float]] = {}
        self._clock = clock
        self._memo: dict[Key, tuple[int | None, Any]] = {}
        self.listeners: list[Callable[[Key], None]] = []

    def __len__(self) -> int:
        return len(self._items)

    def upsert(self, body: Body) -> bool:
        """Store `body` unless what we hold is newer. Returns whether it was stored (a
        body of the same version is: the watch event echoing the answer to our own write
        wakes the object's handlers again, and the reconcilers rely on that pass)."""
        _slim(body)
        key = key_of(body)
        new = _version(body)
        held = self._items.get(key)
        if held is not None:
            old = _version(held)
            if old is not None and new is not None and new < old:
                return False
        elif key in self._tombstones and new is not None and new <= self._tombstones[key][0]:
            return False
        self._items[key] = _compact(body)
        self._tombstones.pop(key, None)
        self._changed(key)
        return True

    def delete(self, body: Body) -> None:
        key = key_of(body)
        self._items.pop(key, None)
        self._memo.pop(key, None)
        version = _version(body)
        now = self._clock()
        self._prune_tombstones(now)
        if version is not None:
            self._tombstones.pop(key, None)  # re-inserted: the newest deletion goes last
            self._tombstones[key] = (version, now)
        self._changed(key)

    def _prune_tombstones(self, now: float) -> None:
        """Drop the markers older than TOMBSTONE_SECONDS (the oldest come first), so a
        long-running operator that deletes many objects holds a bounded number."""
        while self._tombstones:
            key, (_, deleted_at) = next(iter(self._tombstones.items()))
            if now - deleted_at < TOMBSTONE_SECONDS:
                return
            del self._tombstones[key]

    def tombstones(self) -> int:
        """How many deleted objects are remembered (see TOMBSTONE_SECONDS)."""
        return len(self._tombstones)

    def _changed(self, key: Key) -> None:
        for listener in self.listeners:
            listener(key)

    def get(self, key: Key) -> Body | None:
        return self._items.get(key)

    def in_namespace(self, namespace: str) -> Iterator[Body]:
        return (body for (ns, _), body in list(self._items.items()) if ns == namespace)

    def snapshot_keys(self) -> list[Key]:
        return list(self._items)

    def memo(self, key: Key) -> tuple[int | None, Any] | None:
        """A value derived from the body at a given resourceVersion (see `remember`)."""
        return self._memo.get(key)

    def remember(self, key: Key, version: int | None, value: Any) -> None:
        self._memo[key] = (version, value)

    @staticmethod
    def version(body: Body) -> int | None:
        return _version(body)
