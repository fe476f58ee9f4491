"""A fault-injecting seam for API writes, for the fault suite only (F10).

The fault that matters most to a control plane is the write that **took effect while the
caller saw a timeout**, next to the one that failed before taking effect (Temporal runs
its functional suite with 1% of each). `OPSCORE_KUBE_WRITE_FAULTS=after=0.01,before=0.01`
in a process's environment wraps its API client's transport so that, of its writes
(POST, PUT, PATCH, DELETE): a share `after` is sent, takes effect, and then raises
`httpx.ReadTimeout` as a lost answer would; a share `before` raises `httpx.ConnectError`
without sending anything. Reads and watches are never touched. Each injected fault is
logged at WARNING (`injected API write fault`), so the suite can count them.

Unset (always, outside the test bed), `wrap` returns the transport it was given: nothing
is added to any request. A malformed value stops the process at start-up (`ValueError`).
"""

from __future__ import annotations

import logging
import os
import random

import httpx

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


class FaultyWrites(httpx.AsyncBaseTransport):
    """Passes every request to `inner`, except the writes chosen to fail (see module)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, *, after: float, before: float, rng: random.Random
    ) -> None:
        self._inner = inner
        self._after = after
        self._before = before
        self._rng = rng

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in WRITES:
            return await self._inner.handle_async_request(request)
        roll = self._rng.random()
        where = f"{request.method} {request.url.path}"
        if roll < self._before:
            logger.warning("injected API write fault before taking effect: %s", where)
            raise httpx.ConnectError(f"injected fault before {where}", request=request)
        response = await self._inner.handle_async_request(request)
        if roll < self._before + self._after:
            await response.aclose()
            logger.warning(
                "injected API write fault after taking effect (%d): %s",
                response.status_code,
                where,
            )
            raise httpx.ReadTimeout(f"injected timeout after {where}", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


_AFTER, _BEFORE = parse(os.environ.get(ENV, ""))


def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """`inner`, or `inner` behind `FaultyWrites` when the environment asks for faults."""
    if not (_AFTER or _BEFORE):
        return inner
    return FaultyWrites(inner, after=_AFTER, before=_BEFORE, rng=random.Random())
