"""What the trigger endpoint reads, kept for a few seconds, and each trigger's rate limit.

Triggers, their Secrets and their templates are read with GETs and cached for
`OPSCORE_TRIGGER_CACHE_SECONDS` (5 s), absences too. Why short-TTL reads and not a watch:
a GET needs only the `get` verb, so the sidecar's Role can read a Secret it is told the
name of but can neither list nor watch the namespace's Secrets (a watch needs both, and
would stream every Secret into the sidecar's memory); and a call costs at most one read
per object per 5 s, however often it comes. The price: an edit (a rotated secret, a
deleted trigger) takes up to 5 s to apply. An unreachable API server raises `Unavailable`
(the app answers 503); nothing is cached then.

The rate limit is a token bucket per trigger uid (`TriggerRateLimit`), in this process's
memory like the agent API's limits (`ratelimit.py`); a trigger whose limit is edited gets a
new, full bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opscore_kube import NotFound, Resource
from opscore_logic.trigger_model import TriggerRateLimit
from opscore_sidecar.agent_directory import KubeApi
from opscore_sidecar.ratelimit import Buckets

Body = dict[str, Any]
#: Cached reads above which expired ones are dropped (a flood of unknown names cannot
#: grow the cache beyond what 5 s of requests named).
_PRUNE_AT = 4096


@dataclass(slots=True)
class _Read:
    body: Body | None
    expires: float


@dataclass(slots=True)
class TriggerDesk:
    """Cached GETs of triggers, Secrets and templates, and the triggers' buckets."""

    kube: KubeApi
    ttl: float
    clock: Callable[[], float] = time.monotonic
    _reads: dict[tuple[str, str, str], _Read] = field(default_factory=dict)
    _buckets: dict[str, tuple[TriggerRateLimit, Buckets]] = field(default_factory=dict)

    async def read(self, resource: Resource, namespace: str, name: str) -> Body | None:
        """The object, or None when it does not exist; from the cache when read less than
        `ttl` seconds ago. `Unavailable` (and any other API error) propagates uncached."""
        key = (resource.plural, namespace, name)
        now = self.clock()
        cached = self._reads.get(key)
        if cached is not None and cached.expires > now:
            return cached.body
        try:
            body: Body | None = await self.kube.get(resource, namespace, name)
        except NotFound:
            body = None
        if self.ttl > 0:
            if len(self._reads) >= _PRUNE_AT:
                self._reads = {k: r for k, r in self._reads.items() if r.expires > now}
            self._reads[key] = _Read(body, now + self.ttl)
        return body

    def admit(self, trigger_uid: str, limit: TriggerRateLimit) -> float | None:
        """None: admitted, one token taken. Else the seconds until the trigger's bucket has
        a token again (nothing taken)."""
        held = self._buckets.get(trigger_uid)
        if held is None or held[0] != limit:
            held = (limit, Buckets(rate=limit.requests_per_minute / 60.0, burst=limit.burst))
            self._buckets[trigger_uid] = held
        buckets = held[1]
        now = self.clock()
        wait = buckets.wait(trigger_uid, now)
        if wait > 0:
            return wait
        buckets.take(trigger_uid, now)
        return None
