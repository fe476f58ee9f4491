"""Per-key and per-agent rate limits on the agent API (token buckets in memory); the
FastAPI dependency that answers 429 with `Retry-After` is in `quota.py`.

Why two limits: the per-agent limit keeps one looping agent from taking the write path
(and the API server's budget) from the others; the per-key limit bounds what one
credential can do, whatever agent ids it names. With one key shared by every agent (the
single `OPSCORE_API_KEY`), the per-key limit is a global ceiling, so its default sits above
what one sidecar can store anyway.

The rule (also in docs/sidecar-api.md): every request on `/v1/opscore/agent/{agentId}/...`
that passed authentication and scoping costs one token from its key's bucket and one from
its agent's bucket. A bucket holds up to `burst` tokens and refills at `rate` per second.
A request is admitted only when both buckets have a token, and then takes one from each;
otherwise it is answered 429 with `Retry-After` (whole seconds until both have one again)
and takes nothing, so a throttled client is not pushed further back by its own retries.

Nothing is ever dropped after it was accepted: a throttled report gets 429 before it is
queued, so the agent knows it was not stored (a significant report is never lost without
its sender being told). The defaults (`settings.py`) leave wide headroom over the heaviest
benchmark (800 reports/s over 100 agents, one key): a well-behaved agent never sees a 429.

Buckets live in memory, in the one sidecar process (one replica per namespace, like the
writer). A full bucket is the same as no bucket, so full ones are forgotten when the maps
grow: memory follows the number of recently busy keys and agents, not of all ever seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

Limit = Literal["key", "agent"]
_PRUNE_AT = 10_000  # bucket count above which full buckets are forgotten


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class Buckets:
    """Token buckets by name, all with one `rate` (tokens/s) and `burst` (capacity)."""

    def __init__(self, *, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[Hashable, _Bucket] = {}
        self._prune_at = _PRUNE_AT

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, name: Hashable, now: float) -> float:
        """Seconds until `name` has a token (0: it has one now). Takes nothing."""
        bucket = self._buckets.get(name)
        if bucket is None:
            return 0.0
        tokens = self._refill(bucket, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, name: Hashable, now: float) -> None:
        """Take one token from `name` (call after `wait` said 0)."""
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            self._buckets[name] = _Bucket(self.burst - 1.0, now)
            return
        bucket.tokens = self._refill(bucket, now) - 1.0
        bucket.stamp = now

    def _refill(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + max(0.0, now - bucket.stamp) * self.rate)

    def _prune(self, now: float) -> None:
        """Forget full buckets; if most are busy, wait for twice as many before trying again
        (so a flood of distinct names costs amortised O(1) per request)."""
        self._buckets = {
            name: bucket
            for name, bucket in self._buckets.items()
            if self._refill(bucket, now) < self.burst
        }
        self._prune_at = max(_PRUNE_AT, 2 * len(self._buckets))


class RateLimits:
    """The per-key and per-agent limits; either may be off (None)."""

    def __init__(
        self,
        *,
        per_key: Buckets | None,
        per_agent: Buckets | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_key = per_key
        self.per_agent = per_agent
        self._clock = clock

    @classmethod
    def configured(
        cls,
        *,
        key_rate: float,
        key_burst: int,
        agent_rate: float,
        agent_burst: int,
    ) -> RateLimits:
        """From settings: a rate of 0 turns that limit off."""
        return cls(
            per_key=Buckets(rate=key_rate, burst=key_burst) if key_rate > 0 else None,
            per_agent=Buckets(rate=agent_rate, burst=agent_burst) if agent_rate > 0 else None,
        )

    def admit(self, key: Hashable, agent_id: str) -> tuple[Limit, float] | None:
        """None: admitted, one token taken from each bucket. Else (the limit that is
        exhausted, seconds until both buckets have a token again), nothing taken."""
        now = self._clock()
        key_wait = self.per_key.wait(key, now) if self.per_key is not None else 0.0
        agent_wait = self.per_agent.wait(agent_id, now) if self.per_agent is not None else 0.0
        if key_wait > 0 or agent_wait > 0:
            return ("agent" if agent_wait >= key_wait else "key"), max(key_wait, agent_wait)
        if self.per_key is not None:
            self.per_key.take(key, now)
        if self.per_agent is not None:
            self.per_agent.take(agent_id, now)
        return None
