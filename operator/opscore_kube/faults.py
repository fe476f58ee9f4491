"""A fault-injecting seam for API writes, for the fault suite only (F10).

The fault that matters most to a control plane is the write that **took effect while the
caller saw a timeout**, next to the one that failed before taking effect (Temporal runs
its functional suite with 1% of each). `OPSCORE_KUBE_WRITE_FAULTS=after=0.01,before=0.01`
in a process's environment wraps its API client's exchange so that, of its writes
(POST, PUT, PATCH, DELETE): a share `after` is sent, takes effect, and then raises
`exchange.Lost` as a lost answer would; a share `before` raises `exchange.NotSent`
without sending anything. Reads and watches are never touched. Each injected fault is
logged at WARNING (`injected API write fault`), so the suite can count them.

Unset (always, outside the test bed), `wrap` returns the exchange it was given: nothing
is added to any request. A malformed value stops the process at start-up (`ValueError`).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Awaitable, Mapping

from opscore_kube.exchange import Answer, Exchange, Lost, NotSent

logger = logging.getLogger("opscore.kube.faults")

ENV = "OPSCORE_KUBE_WRITE_FAULTS"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse(text: str) -> tuple[float, float]:
    """`after=P,before=P` -> (after, before), each a probability in [0, 1]."""
    shares = {"after": 0.0, "before": 0.0}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if name not in shares or not 0.0 <= share <= 1.0:
            raise ValueError(f"{ENV}: {item!r} is not after=P or before=P with 0 <= P <= 1")
        shares[name] = share
    if shares["after"] + shares["before"] > 1.0:
        raise ValueError(f"{ENV}: after + before exceed 1")
    return shares["after"], shares["before"]


class FaultyWrites:
    """Passes every request to `inner`, except the writes chosen to fail (see module)."""

    def __init__(self, inner: Exchange, *, after: float, before: float, rng: random.Random) -> None:
        self._inner = inner
        self._after = after
        self._before = before
        self._rng = rng

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
        def onward() -> Awaitable[Answer]:
            return self._inner.send(
                method, path, params=params, headers=headers, body=body, read_timeout=read_timeout
            )

        if method not in WRITES:
            return await onward()
        roll = self._rng.random()
        where = f"{method} {path}"
        if roll < self._before:
            logger.warning("injected API write fault before taking effect: %s", where)
            raise NotSent(f"injected fault before {where}")
        answer = await onward()
        if roll < self._before + self._after:
            logger.warning(
                "injected API write fault after taking effect (%d): %s", answer.status, where
            )
            raise Lost(f"injected timeout after {where}")
        return answer

    async def aclose(self) -> None:
        await self._inner.aclose()


_AFTER, _BEFORE = parse(os.environ.get(ENV, ""))


def wrap(inner: Exchange) -> Exchange:
    """`inner`, or `inner` behind `FaultyWrites` when the environment asks for faults."""
    if not (_AFTER or _BEFORE):
        return inner
    return FaultyWrites(inner, after=_AFTER, before=_BEFORE, rng=random.Random())
