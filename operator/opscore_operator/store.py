"""In-memory copies of the objects the operator watches (an informer cache).

The operator updates it from watch events and from the answers to its own writes, so a
decision never starts from a status older than one it wrote itself (that is how steps
would get dispatched twice). Older resourceVersions never overwrite newer ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

Key = tuple[str, str]  # (namespace, name)
Body = dict[str, Any]


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
    value = body.get("metadata", {}).get("resourceVersion")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ObjectCache:
    """Latest known body per (namespace, name), plus a per-version memo of parsed forms.

    `listeners` are told the key of every body stored or deleted (an informer's event
    handlers), so what is derived from the bodies can be kept current incrementally."""

    def __init__(self) -> None:
        self._items: dict[Key, Body] = {}
        self._tombstones: dict[Key, int] = {}
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
        elif key in self._tombstones and new is not None and new <= self._tombstones[key]:
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
        if version is not None:
            self._tombstones[key] = version
        self._changed(key)

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
